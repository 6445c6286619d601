"""SNMP MIB counters under their Linux names.

Linux: include/uapi/linux/snmp.h, net/ipv4/proc.c (/proc/net/snmp order)
"""

IP_MIB = ("Forwarding", "DefaultTTL", "InReceives", "InHdrErrors", "InAddrErrors",
          "ForwDatagrams", "InUnknownProtos", "InDiscards", "InDelivers",
          "OutRequests", "OutDiscards", "OutNoRoutes", "ReasmTimeout", "ReasmReqds",
          "ReasmOKs", "ReasmFails", "FragOKs", "FragFails", "FragCreates",
          "OutTransmits")
# Linux keeps these outside the RFC table (/proc/net/netstat IpExt)
IP_EXT_MIB = ("InNoRoutes", "InTruncatedPkts", "InMcastPkts", "OutMcastPkts",
              "InBcastPkts", "OutBcastPkts", "InOctets", "OutOctets", "InMcastOctets",
              "OutMcastOctets", "InBcastOctets", "OutBcastOctets", "InCsumErrors",
              "InNoECTPkts", "InECT1Pkts", "InECT0Pkts", "InCEPkts", "ReasmOverlaps")
# IPSTATS_MIB_NOECTPKTS + (tos & INET_ECN_MASK), as ip_rcv_core indexes them
IP_ECN_FIELDS = ("InNoECTPkts", "InECT1Pkts", "InECT0Pkts", "InCEPkts")
ICMP_MIB = ("InMsgs", "InErrors", "InCsumErrors", "InDestUnreachs", "InTimeExcds",
            "InParmProbs", "InSrcQuenchs", "InRedirects", "InEchos", "InEchoReps",
            "InTimestamps", "InTimestampReps", "InAddrMasks", "InAddrMaskReps",
            "OutMsgs", "OutErrors", "OutRateLimitGlobal", "OutRateLimitHost",
            "OutDestUnreachs", "OutTimeExcds", "OutParmProbs", "OutSrcQuenchs",
            "OutRedirects", "OutEchos", "OutEchoReps", "OutTimestamps",
            "OutTimestampReps", "OutAddrMasks", "OutAddrMaskReps")
UDP_MIB = ("InDatagrams", "NoPorts", "InErrors", "OutDatagrams", "RcvbufErrors",
           "SndbufErrors", "InCsumErrors", "IgnoredMulti", "MemErrors")
TCP_MIB = ("RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "ActiveOpens", "PassiveOpens",
           "AttemptFails", "EstabResets", "CurrEstab", "InSegs", "OutSegs", "RetransSegs",
           "InErrs", "OutRsts", "InCsumErrors")
# /proc/net/netstat TcpExt: the ones emu's TCP maintains
TCP_EXT_MIB = ("SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "TW", "PAWSEstab",
               "DelayedACKs", "DelayedACKLost", "ListenOverflows", "ListenDrops",
               "TCPRenoRecovery", "TCPSackRecovery", "TCPFastRetrans", "TCPTimeouts",
               "TCPLossProbes", "TCPAbortOnData", "TCPAbortOnClose", "TCPAbortOnTimeout",
               "TCPSYNChallenge", "TCPChallengeACK", "TCPOFOQueue", "TCPZeroWindowDrop",
               "TCPSynRetrans", "TCPReqQFullDrop", "TCPACKSkippedSeq", "OutOfWindowIcmps",
               "TCPAutoCorking")
ARP_MIB = ("InRequests", "InReplies", "OutRequests", "OutReplies", "InErrors",
           "Unresolved")   # emu: Linux reports these through neighbour stats

# ICMP type -> (In field, Out field), as icmp_pointers[] in net/ipv4/icmp.c
ICMP_TYPE_FIELDS = {0: ("InEchoReps", "OutEchoReps"), 3: ("InDestUnreachs", "OutDestUnreachs"),
                    4: ("InSrcQuenchs", "OutSrcQuenchs"), 5: ("InRedirects", "OutRedirects"),
                    8: ("InEchos", "OutEchos"), 11: ("InTimeExcds", "OutTimeExcds"),
                    12: ("InParmProbs", "OutParmProbs"), 13: ("InTimestamps", "OutTimestamps"),
                    14: ("InTimestampReps", "OutTimestampReps")}


def snmp_init(net):
    """Create the MIB tables of a net, every counter at zero."""
    net.mib["Ip"] = dict.fromkeys(IP_MIB, 0)
    net.mib["Ip"]["Forwarding"] = 2
    net.mib["Ip"]["DefaultTTL"] = net.sysctl["net.ipv4.ip_default_ttl"]
    net.mib["IpExt"] = dict.fromkeys(IP_EXT_MIB, 0)
    net.mib["Icmp"] = dict.fromkeys(ICMP_MIB, 0)
    net.mib["IcmpMsg"] = {}
    net.mib["Udp"] = dict.fromkeys(UDP_MIB, 0)
    net.mib["Arp"] = dict.fromkeys(ARP_MIB, 0)
    net.mib["Tcp"] = dict.fromkeys(TCP_MIB, 0)
    net.mib["Tcp"].update(RtoAlgorithm=1, RtoMin=200, RtoMax=120000, MaxConn=-1)
    net.mib["TcpExt"] = dict.fromkeys(TCP_EXT_MIB, 0)


def icmpmsg_inc(net, direction, icmp_type):
    """IcmpMsg: InType8, OutType0 ... (per-type counters, created on first use)."""
    key = "%sType%d" % (direction, icmp_type)
    m = net.mib["IcmpMsg"]
    m[key] = m.get(key, 0) + 1


def icmp_out_count(net, icmp_type):
    """One ICMP message sent: OutMsgs, the per-type counter and IcmpMsg OutTypeN."""
    m = net.mib["Icmp"]
    m["OutMsgs"] += 1
    f = ICMP_TYPE_FIELDS.get(icmp_type)
    if f:
        m[f[1]] += 1
    key = "OutType%d" % icmp_type                 # icmpmsg_inc, written out
    m = net.mib["IcmpMsg"]
    m[key] = m.get(key, 0) + 1
