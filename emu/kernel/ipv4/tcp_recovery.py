"""TCP loss recovery: SACK scoreboard, fast retransmit and recovery.

Linux: net/ipv4/tcp_input.c (tcp_sacktag_write_queue, tcp_fastretrans_alert,
tcp_enter_recovery, tcp_xmit_retransmit_queue), net/ipv4/tcp_recovery.c;
RFC 5681 3.2, RFC 6582 (NewReno), RFC 2018 and RFC 6675 (SACK), RFC 6937 (PRR).
"""
from bisect import bisect_right

from .tcp import (
    TCP_CA_Disorder, TCP_CA_Open, TCP_CA_Recovery, TCP_CA_Loss, TCPCB_LOST,
    TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, after, before, seq_sub,
)
from .tcp_output import (
    tcp_fragment, tcp_packets_in_flight, tcp_retransmit_skb,
)

FLAG_SND_UNA_ADVANCED = 0x400


def _first_after(q, una, seq):
    """Index of the first skb of q (in sequence order, each ending after una)
    that ends after seq; 0 for a seq at or before una or None (Linux walks its
    rb-tree there, tcp_sacktag_skip)."""
    if seq is None:
        return 0
    off = (seq - una) & 0xFFFFFFFF
    if off == 0 or off >= 0x80000000:
        return 0
    return bisect_right(q, off, key=lambda skb: (skb.cb.end_seq - una) & 0xFFFFFFFF)


def tcp_sack_hints_una(tp):
    """snd_una moved: a hint at or behind it means nothing any more (the skbs
    it was about are gone) and is dropped, so that none is left to come back
    as a seemingly valid one after 2 GiB of sequence space (no SACKed skb is
    left when the highest one is acknowledged)."""
    una = tp.snd_una
    if tp.highest_sack is not None and not after(tp.highest_sack, una):
        tp.highest_sack = None
    if tp.lost_hint is not None and not after(tp.lost_hint, una):
        tp.lost_hint = None
    if tp.rtx_hint is not None and not after(tp.rtx_hint, una):
        tp.rtx_hint = None
    cache = tp.recv_sack_cache
    if cache and not all(after(e, una) for _, e in cache):
        tp.recv_sack_cache = tuple(b for b in cache if after(b[1], una))


def _lost_below_hint(tp, cb):
    """An skb is newly marked lost: the retransmit hint must not be past it."""
    hint = tp.rtx_hint
    if hint is not None and before(cb.seq, hint):
        tp.rtx_hint = cb.seq


def _new_parts(tp, start, end, cache):
    """The parts of SACK block [start, end) outside the previous ACK's blocks
    (Linux's recv_sack_cache: what they covered is marked already, and an
    skb stays SACKed while it is in the queue)."""
    una = tp.snd_una
    todo = [((start - una) & 0xFFFFFFFF, (end - una) & 0xFFFFFFFF)]
    for cs, ce in cache:
        if not after(ce, una):
            continue
        c0 = 0 if not after(cs, una) else (cs - una) & 0xFFFFFFFF
        c1 = (ce - una) & 0xFFFFFFFF
        out = []
        for a, b in todo:
            if c1 <= a or c0 >= b:
                out.append((a, b))
                continue
            if a < c0:
                out.append((a, c0))
            if c1 < b:
                out.append((c1, b))
        todo = out
    return [((una + a) & 0xFFFFFFFF, (una + b) & 0xFFFFFFFF) for a, b in todo]


def tcp_sacktag_write_queue(sk, blocks):
    """Mark what the peer's SACK blocks cover (RFC 2018); returns newly sacked count."""
    tp = sk.proto_data
    newly = 0
    used = []
    cache = tp.recv_sack_cache
    for start, end in blocks:
        if not after(end, tp.snd_una) or after(end, tp.snd_nxt) or not before(start, end):
            continue                       # D-SACK or bogus: ignore
        used.append((start, end))
        for a, b in _new_parts(tp, start, end, cache):
            newly += _sacktag_range(sk, tp, a, b)
    tp.recv_sack_cache = tuple(used)
    return newly


def _sacktag_range(sk, tp, start, end):
    """Mark the skbs within [start, end) SACKed, cutting those across its edges
    (tcp_sacktag_walk, tcp_match_skb_to_sack); returns the segments newly SACKed."""
    newly = 0
    q = tp.rtx_queue
    i = _first_after(q, tp.snd_una, start)
    while i < len(q):
        skb = q[i]
        i += 1
        cb = skb.cb
        if cb.sacked & TCPCB_SACKED_ACKED or not after(cb.end_seq, start):
            continue
        if not before(cb.seq, end):
            break
        # A block that covers part of a super-segment: cut it at the
        # block's edges (tcp_match_skb_to_sack).
        if before(cb.seq, start):
            tcp_fragment(sk, skb, seq_sub(start, cb.seq))
            continue
        if after(cb.end_seq, end):
            tcp_fragment(sk, skb, seq_sub(end, cb.seq))
        if not before(cb.seq, start) and not after(cb.end_seq, end):
            pcount = cb.pcount
            cb.sacked |= TCPCB_SACKED_ACKED
            tp.sacked_out += pcount
            newly += pcount
            if tp.highest_sack is None or after(cb.end_seq, tp.highest_sack):
                tp.highest_sack = cb.end_seq
            if cb.sacked & TCPCB_SACKED_RETRANS:
                cb.sacked &= ~TCPCB_SACKED_RETRANS
                tp.retrans_out -= pcount
            if cb.sacked & TCPCB_LOST:
                cb.sacked &= ~TCPCB_LOST
                tp.lost_out -= pcount
    return newly


def tcp_enter_recovery(sk):
    """Fast retransmit (RFC 5681 3.2): ssthresh down, retransmit the first hole."""
    tp = sk.proto_data
    net = sk.net
    net.mib["TcpExt"]["TCPSackRecovery" if tp.sack_ok else "TCPRenoRecovery"] += 1
    tp.prior_ssthresh = tp.snd_ssthresh
    tp.prior_cwnd = tp.snd_cwnd
    tp.undo_marker = tp.snd_una
    tp.snd_ssthresh = tp.ca_ops.ssthresh(sk)
    tp.high_seq = tp.snd_nxt
    tp.ca_state = TCP_CA_Recovery
    if tp.ca_ops.set_state is not None:
        tp.ca_ops.set_state(sk, TCP_CA_Recovery)
    # tcp_init_cwnd_reduction: cwnd comes down by PRR (RFC 6937), ACK by ACK.
    tp.prr_delivered = 0
    tp.prr_out = 0
    net.mib["TcpExt"]["TCPFastRetrans"] += 1
    head = tp.rtx_queue[0] if tp.rtx_queue else None
    if head is not None and not head.cb.sacked & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS):
        if not head.cb.sacked & TCPCB_LOST:
            head.cb.sacked |= TCPCB_LOST
            tp.lost_out += head.cb.pcount
            _lost_below_hint(tp, head.cb)


def tcp_cwnd_reduction(sk, newly_acked_sacked, flag):
    """PRR (RFC 6937, Linux's tcp_cwnd_reduction): send in proportion to what
    was delivered while in flight is above ssthresh, then slow-start back up
    to it (PRR-SSRB); the first call always allows the fast retransmit."""
    tp = sk.proto_data
    if newly_acked_sacked <= 0 or not tp.prior_cwnd:
        return
    in_flight = tcp_packets_in_flight(tp)
    delta = tp.snd_ssthresh - in_flight
    tp.prr_delivered += newly_acked_sacked
    if delta < 0:
        sndcnt = (tp.snd_ssthresh * tp.prr_delivered + tp.prior_cwnd - 1) // tp.prior_cwnd \
            - tp.prr_out
    else:
        sndcnt = max(tp.prr_delivered - tp.prr_out, newly_acked_sacked)
        if flag & FLAG_SND_UNA_ADVANCED:
            sndcnt += 1
        sndcnt = min(delta, sndcnt)
    sndcnt = max(sndcnt, 0 if tp.prr_out else 1)
    tp.snd_cwnd = in_flight + sndcnt


def tcp_mark_sack_holes_lost(sk):
    """RFC 6675 IsLost: a segment with 3 (reordering) SACKed segments above it is lost.

    Every skb below the reordering-th SACKed skb from the top that is not
    SACKed, lost or retransmitted is marked. That skb is found down from the
    highest SACKed one, and the marking starts at lost_hint, below which all
    are one of those three already (Linux: highest_sack, lost_skb_hint):
    what an ACK costs is what it changed, not a walk of the window."""
    tp = sk.proto_data
    q = tp.rtx_queue
    hs = tp.highest_sack
    if not q or hs is None or not after(hs, tp.snd_una):
        return
    una = tp.snd_una
    top = _first_after(q, una, (hs - 1) & 0xFFFFFFFF)       # the skb ending at hs
    reordering = tp.reordering
    k = top
    sacked_above = 0
    while k >= 0:
        if q[k].cb.sacked & TCPCB_SACKED_ACKED:
            sacked_above += 1
            if sacked_above >= reordering:
                break
        k -= 1
    if k < 0:
        return                            # fewer than reordering SACKed skbs
    skip = TCPCB_LOST | TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED
    lost = 0
    i = _first_after(q, una, tp.lost_hint)
    for j in range(i, k):
        cb = q[j].cb
        if not cb.sacked & skip:
            cb.sacked |= TCPCB_LOST
            lost += cb.pcount
            _lost_below_hint(tp, cb)
    if k > i:
        tp.lost_hint = q[k - 1].cb.end_seq
    tp.lost_out += lost


def tcp_xmit_retransmit_queue(sk):
    """Retransmit lost segments while cwnd allows (before any new data), from
    the retransmit hint on (Linux: retransmit_skb_hint): the skbs before it
    were retransmitted, SACKed or not lost when it was set, and marking one
    of them lost since has moved it back (_lost_below_hint)."""
    tp = sk.proto_data
    q = tp.rtx_queue
    # In flight changes only when something is retransmitted: computed again
    # then, not for every skb of the window looked at.
    in_flight = tcp_packets_in_flight(tp)
    done = TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED
    i = _first_after(q, tp.snd_una, tp.rtx_hint)
    advance = True          # the hint follows while every skb passed needs nothing more
    # The live queue, not a copy: retransmitting may cut an skb in two
    # (tcp_fragment after an MSS drop) and the second part is lost as well.
    while i < len(q):
        if in_flight >= tp.snd_cwnd:
            break
        skb = q[i]
        i += 1
        cb = skb.cb
        if cb.sacked & TCPCB_LOST and not cb.sacked & done:
            tcp_retransmit_skb(sk, skb)
            if tp.ca_state != TCP_CA_Loss:
                tp.prr_out += cb.pcount
            in_flight = tcp_packets_in_flight(tp)
            if not cb.sacked & TCPCB_SACKED_RETRANS:
                advance = False           # not sent (refused below TCP): still to do
        if advance:
            tp.rtx_hint = cb.end_seq


def tcp_fastretrans_alert(sk, flag, is_dupack, acked, acked_sacked=0):
    """The loss-recovery state machine (tcp_fastretrans_alert, simplified).

    acked_sacked: segments this ACK delivered (cumulatively or by SACK), which
    PRR spends; a NewReno duplicate ACK delivers one (tcp_add_reno_sack)."""
    tp = sk.proto_data
    if tp.ca_state == TCP_CA_Open and tp.sacked_out:
        tp.ca_state = TCP_CA_Disorder
    if tp.ca_state in (TCP_CA_Open, TCP_CA_Disorder):
        if is_dupack and not tp.sack_ok:
            tp.sacked_out += 1            # NewReno counts dupacks as sacked (tcp_add_reno_sack)
            tp.dupacks += 1
        elif is_dupack:
            tp.dupacks += 1
        if (tp.sack_ok and tp.sacked_out >= tp.reordering) or \
                (not tp.sack_ok and tp.dupacks >= tp.reordering):
            tcp_enter_recovery(sk)
            if tp.sack_ok:
                tcp_mark_sack_holes_lost(sk)
            tcp_cwnd_reduction(sk, acked_sacked or (1 if is_dupack else 0), flag)
            tcp_xmit_retransmit_queue(sk)
        elif tp.ca_state == TCP_CA_Disorder and not tp.sacked_out:
            tp.ca_state = TCP_CA_Open
        return
    if tp.ca_state == TCP_CA_Recovery:
        if not before(tp.snd_una, tp.high_seq):
            # Full ACK: recovery is over (RFC 6582 3.2 step 3).
            tp.snd_cwnd = max(tp.snd_ssthresh, 2)
            tp.ca_state = TCP_CA_Open
            tp.dupacks = 0
            if not tp.sack_ok:
                tp.sacked_out = 0
            if tp.ca_ops.set_state is not None:
                tp.ca_ops.set_state(sk, TCP_CA_Open)
            return
        if flag & FLAG_SND_UNA_ADVANCED:
            # Partial ACK (RFC 6582 3.2 step 5): the next hole is lost too.
            if not tp.sack_ok:
                tp.sacked_out = max(0, tp.sacked_out - acked)
            head = tp.rtx_queue[0] if tp.rtx_queue else None
            if head is not None and not head.cb.sacked & (TCPCB_SACKED_RETRANS | TCPCB_LOST):
                head.cb.sacked |= TCPCB_LOST
                tp.lost_out += head.cb.pcount
                _lost_below_hint(tp, head.cb)
        elif is_dupack and not tp.sack_ok:
            tp.sacked_out += 1
        if tp.sack_ok:
            tcp_mark_sack_holes_lost(sk)
        tcp_cwnd_reduction(sk, acked_sacked or (1 if is_dupack else 0), flag)
        tcp_xmit_retransmit_queue(sk)
        return
    if tp.ca_state == TCP_CA_Loss:
        if not before(tp.snd_una, tp.high_seq):
            tp.ca_state = TCP_CA_Open
            if tp.ca_ops.set_state is not None:
                tp.ca_ops.set_state(sk, TCP_CA_Open)
            return
        tcp_xmit_retransmit_queue(sk)
