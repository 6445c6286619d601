"""Linux's /proc/net/snmp and /proc/net/netstat field lists, in the kernel's order
(net/ipv4/proc.c snmp4_*_list, snmp4_net_list, snmp4_ipextstats_list; MPTcpExt
from net/mptcp/mib.c), as Linux 6.18 prints them: read from tests/fixtures/linux."""

IP_FIELDS = (
    "Forwarding", "DefaultTTL", "InReceives", "InHdrErrors", "InAddrErrors", "ForwDatagrams",
    "InUnknownProtos", "InDiscards", "InDelivers", "OutRequests", "OutDiscards", "OutNoRoutes",
    "ReasmTimeout", "ReasmReqds", "ReasmOKs", "ReasmFails", "FragOKs", "FragFails",
    "FragCreates", "OutTransmits",
)
ICMP_FIELDS = (
    "InMsgs", "InErrors", "InCsumErrors", "InDestUnreachs", "InTimeExcds", "InParmProbs",
    "InSrcQuenchs", "InRedirects", "InEchos", "InEchoReps", "InTimestamps", "InTimestampReps",
    "InAddrMasks", "InAddrMaskReps", "OutMsgs", "OutErrors", "OutRateLimitGlobal",
    "OutRateLimitHost", "OutDestUnreachs", "OutTimeExcds", "OutParmProbs", "OutSrcQuenchs",
    "OutRedirects", "OutEchos", "OutEchoReps", "OutTimestamps", "OutTimestampReps",
    "OutAddrMasks", "OutAddrMaskReps",
)
TCP_FIELDS = (
    "RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "ActiveOpens", "PassiveOpens",
    "AttemptFails", "EstabResets", "CurrEstab", "InSegs", "OutSegs", "RetransSegs", "InErrs",
    "OutRsts", "InCsumErrors",
)
UDP_FIELDS = (
    "InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors", "SndbufErrors",
    "InCsumErrors", "IgnoredMulti", "MemErrors",
)
UDPLITE_FIELDS = (
    "InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors", "SndbufErrors",
    "InCsumErrors", "IgnoredMulti", "MemErrors",
)
TCPEXT_FIELDS = (
    "SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "EmbryonicRsts", "PruneCalled",
    "RcvPruned", "OfoPruned", "OutOfWindowIcmps", "LockDroppedIcmps", "ArpFilter", "TW",
    "TWRecycled", "TWKilled", "PAWSActive", "PAWSEstab", "BeyondWindow", "TSEcrRejected",
    "PAWSOldAck", "PAWSTimewait", "DelayedACKs", "DelayedACKLocked", "DelayedACKLost",
    "ListenOverflows", "ListenDrops", "TCPHPHits", "TCPPureAcks", "TCPHPAcks",
    "TCPRenoRecovery", "TCPSackRecovery", "TCPSACKReneging", "TCPSACKReorder",
    "TCPRenoReorder", "TCPTSReorder", "TCPFullUndo", "TCPPartialUndo", "TCPDSACKUndo",
    "TCPLossUndo", "TCPLostRetransmit", "TCPRenoFailures", "TCPSackFailures",
    "TCPLossFailures", "TCPFastRetrans", "TCPSlowStartRetrans", "TCPTimeouts", "TCPLossProbes",
    "TCPLossProbeRecovery", "TCPRenoRecoveryFail", "TCPSackRecoveryFail", "TCPRcvCollapsed",
    "TCPBacklogCoalesce", "TCPDSACKOldSent", "TCPDSACKOfoSent", "TCPDSACKRecv",
    "TCPDSACKOfoRecv", "TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnMemory",
    "TCPAbortOnTimeout", "TCPAbortOnLinger", "TCPAbortFailed", "TCPMemoryPressures",
    "TCPMemoryPressuresChrono", "TCPSACKDiscard", "TCPDSACKIgnoredOld",
    "TCPDSACKIgnoredNoUndo", "TCPSpuriousRTOs", "TCPMD5NotFound", "TCPMD5Unexpected",
    "TCPMD5Failure", "TCPSackShifted", "TCPSackMerged", "TCPSackShiftFallback",
    "TCPBacklogDrop", "PFMemallocDrop", "TCPMinTTLDrop", "TCPDeferAcceptDrop",
    "IPReversePathFilter", "TCPTimeWaitOverflow", "TCPReqQFullDoCookies", "TCPReqQFullDrop",
    "TCPRetransFail", "TCPRcvCoalesce", "TCPOFOQueue", "TCPOFODrop", "TCPOFOMerge",
    "TCPChallengeACK", "TCPSYNChallenge", "TCPFastOpenActive", "TCPFastOpenActiveFail",
    "TCPFastOpenPassive", "TCPFastOpenPassiveFail", "TCPFastOpenListenOverflow",
    "TCPFastOpenCookieReqd", "TCPFastOpenBlackhole", "TCPSpuriousRtxHostQueues",
    "BusyPollRxPackets", "TCPAutoCorking", "TCPFromZeroWindowAdv", "TCPToZeroWindowAdv",
    "TCPWantZeroWindowAdv", "TCPSynRetrans", "TCPOrigDataSent", "TCPHystartTrainDetect",
    "TCPHystartTrainCwnd", "TCPHystartDelayDetect", "TCPHystartDelayCwnd",
    "TCPACKSkippedSynRecv", "TCPACKSkippedPAWS", "TCPACKSkippedSeq", "TCPACKSkippedFinWait2",
    "TCPACKSkippedTimeWait", "TCPACKSkippedChallenge", "TCPWinProbe", "TCPKeepAlive",
    "TCPMTUPFail", "TCPMTUPSuccess", "TCPDelivered", "TCPDeliveredCE", "TCPAckCompressed",
    "TCPZeroWindowDrop", "TCPRcvQDrop", "TCPWqueueTooBig", "TCPFastOpenPassiveAltKey",
    "TcpTimeoutRehash", "TcpDuplicateDataRehash", "TCPDSACKRecvSegs", "TCPDSACKIgnoredDubious",
    "TCPMigrateReqSuccess", "TCPMigrateReqFailure", "TCPPLBRehash", "TCPAORequired",
    "TCPAOBad", "TCPAOKeyNotFound", "TCPAOGood", "TCPAODroppedIcmps",
)
IPEXT_FIELDS = (
    "InNoRoutes", "InTruncatedPkts", "InMcastPkts", "OutMcastPkts", "InBcastPkts",
    "OutBcastPkts", "InOctets", "OutOctets", "InMcastOctets", "OutMcastOctets",
    "InBcastOctets", "OutBcastOctets", "InCsumErrors", "InNoECTPkts", "InECT1Pkts",
    "InECT0Pkts", "InCEPkts", "ReasmOverlaps",
)
MPTCPEXT_FIELDS = (
    "MPCapableSYNRX", "MPCapableSYNTX", "MPCapableSYNACKRX", "MPCapableACKRX",
    "MPCapableFallbackACK", "MPCapableFallbackSYNACK", "MPCapableSYNTXDrop",
    "MPCapableSYNTXDisabled", "MPCapableEndpAttempt", "MPFallbackTokenInit", "MPTCPRetrans",
    "MPJoinNoTokenFound", "MPJoinSynRx", "MPJoinSynBackupRx", "MPJoinSynAckRx",
    "MPJoinSynAckBackupRx", "MPJoinSynAckHMacFailure", "MPJoinAckRx", "MPJoinAckHMacFailure",
    "MPJoinRejected", "MPJoinSynTx", "MPJoinSynTxCreatSkErr", "MPJoinSynTxBindErr",
    "MPJoinSynTxConnectErr", "DSSNotMatching", "DSSCorruptionFallback", "DSSCorruptionReset",
    "InfiniteMapTx", "InfiniteMapRx", "DSSNoMatchTCP", "DataCsumErr", "OFOQueueTail",
    "OFOQueue", "OFOMerge", "NoDSSInWindow", "DuplicateData", "AddAddr", "AddAddrTx",
    "AddAddrTxDrop", "EchoAdd", "EchoAddTx", "EchoAddTxDrop", "PortAdd", "AddAddrDrop",
    "MPJoinPortSynRx", "MPJoinPortSynAckRx", "MPJoinPortAckRx", "MismatchPortSynRx",
    "MismatchPortAckRx", "RmAddr", "RmAddrDrop", "RmAddrTx", "RmAddrTxDrop", "RmSubflow",
    "MPPrioTx", "MPPrioRx", "MPFailTx", "MPFailRx", "MPFastcloseTx", "MPFastcloseRx",
    "MPRstTx", "MPRstRx", "SubflowStale", "SubflowRecover", "SndWndShared", "RcvWndShared",
    "RcvWndConflictUpdate", "RcvWndConflict", "MPCurrEstab", "Blackhole",
    "MPCapableDataFallback", "MD5SigFallback", "DssFallback", "SimultConnectFallback",
    "FallbackFailed", "WinProbe",
)
