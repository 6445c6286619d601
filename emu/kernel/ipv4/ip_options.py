"""IPv4 options: parse and check what arrives, fill in record route and
timestamps, answer with the options reversed.

Linux: net/ipv4/ip_options.c (ip_options_compile, ip_options_rcv_srr,
ip_forward_options, ip_options_echo, ip_options_build, ip_options_fragment),
net/ipv4/ip_input.c (ip_rcv_options), net/ipv4/fib_frontend.c
(fib_compute_spec_dst), net/ipv4/route.c (ip_rt_get_source),
include/net/cipso_ipv4.h (cipso_v4_validate without NetLabel); RFC 791, RFC 1812 5.2.4.

Offsets (srr, rr, ts, ...) count from the start of the IP header, as Linux's.
A received packet's compiled options live in skb.cb (IPCB(skb)->opt) while the
IP layer has it; callers look only when the header is longer than 20 bytes.
"""
import errno

from ..core.skbuff import PACKET_HOST, skb_cow
from ..hdr.icmp import ICMP_PARAMETERPROB

IPOPT_END = 0
IPOPT_NOOP = 1
IPOPT_RR = 7
IPOPT_TIMESTAMP = 68
IPOPT_SEC = 130
IPOPT_LSRR = 131
IPOPT_CIPSO = 134
IPOPT_SID = 136
IPOPT_SSRR = 137
IPOPT_RA = 148

IPOPT_TS_TSONLY = 0        # timestamps only
IPOPT_TS_TSANDADDR = 1     # address and timestamp
IPOPT_TS_PRESPEC = 3       # timestamps at prespecified addresses


def IPOPT_COPIED(o):
    return o & 0x80


class IpOptions:
    """struct ip_options (with its __data when built for sending)."""

    __slots__ = ("optlen", "srr", "rr", "ts", "is_strictroute", "srr_is_hit", "is_changed",
                 "rr_needaddr", "ts_needtime", "ts_needaddr", "router_alert", "cipso",
                 "faddr", "nexthop", "data")

    def __init__(self, optlen=0):
        self.optlen = optlen
        self.srr = self.rr = self.ts = 0
        self.is_strictroute = self.srr_is_hit = self.is_changed = False
        self.rr_needaddr = self.ts_needtime = self.ts_needaddr = False
        self.router_alert = self.cipso = 0
        self.faddr = self.nexthop = 0
        self.data = None           # the option bytes of a reply (ip_options_echo)


def IPCB_opt(skb):
    """The compiled options of a received skb, or None (no options, or not compiled)."""
    cb = skb.cb
    return cb if type(cb) is IpOptions else None


def inet_current_timestamp(net):
    """Milliseconds since midnight UT (RFC 791 timestamp), from the node's clock.

    Emulation note: the kernel reads no wall clock; the node's clock (monotonic
    in the runtime) stands in, so stamps are consistent within a lab, not UT.
    """
    return int((net.clock() % 86400.0) * 1000) & 0xFFFFFFFF


def _get32(buf, off):
    return int.from_bytes(buf[off:off + 4], "big")


def _put32(buf, off, v):
    buf[off:off + 4] = (v & 0xFFFFFFFF).to_bytes(4, "big")


def fib_compute_spec_dst(skb):
    """The address a received packet 'arrived at', for RR/TS and replies:
    its destination if it was for us, else our address toward its sender."""
    from .devinet import inet_select_addr
    from .route import RTN_LOCAL, fib_lookup
    nh = skb.network_header
    buf = skb.buf
    rt = skb.dst
    if rt is not None and rt.rt_type == RTN_LOCAL:
        return _get32(buf, nh + 16)
    dev = skb.dev
    saddr = _get32(buf, nh + 12)
    if saddr & 0xFF000000:
        fa = fib_lookup(dev.net, saddr)
        if fa is not None:
            if fa.prefsrc:
                return fa.prefsrc
            if fa.dev is not None:
                return inet_select_addr(fa.dev, saddr)
    return inet_select_addr(dev, 0)


def ip_rt_get_source(skb, rt):
    """Our address on rt's device, to record in a forwarded packet's options
    (ip_rt_get_source: the source an output route would choose)."""
    from .devinet import inet_select_addr
    from .route import fib_lookup
    nh = skb.network_header
    daddr = _get32(skb.buf, nh + 16)
    fa = fib_lookup(rt.dev.net, daddr)
    if fa is not None and fa.prefsrc and fa.dev is rt.dev:
        return fa.prefsrc
    return inet_select_addr(rt.dev, rt.rt_gw4 or daddr)


def cipso_v4_validate(buf, off):
    """The CIPSO option's structure, as checked without NetLabel: 0, or the offset
    within the option of the byte at fault (include/net/cipso_ipv4.h)."""
    opt_len = buf[off + 1]
    if opt_len < 8:
        return 1
    if _get32(buf, off + 2) == 0:
        return 2
    it = 6
    while it < opt_len:
        if it + 1 == opt_len:
            return it
        tag_len = buf[off + it + 1]
        if tag_len == 0 or tag_len > opt_len - it:
            return it + 1
        it += tag_len
    return 0


def __ip_options_compile(net, opt, buf, iph, skb):
    """Walk and check the options at buf[iph+20:], filling opt; returns the offset
    (from iph) of the offending byte, or -1 when all is well. With an skb (a
    received packet) RR and TS get our address and time written in."""
    rt = skb.dst if skb is not None else None
    optptr = iph + 20
    l = opt.optlen
    while l > 0:
        o = buf[optptr]
        if o == IPOPT_END:
            optptr += 1
            l -= 1
            while l > 0:
                if buf[optptr] != IPOPT_END:
                    buf[optptr] = IPOPT_END
                    opt.is_changed = True
                optptr += 1
                l -= 1
            break
        if o == IPOPT_NOOP:
            l -= 1
            optptr += 1
            continue
        if l < 2:
            return optptr - iph            # no room for a length byte
        optlen = buf[optptr + 1]
        if optlen < 2 or optlen > l:
            return optptr - iph
        p = optptr + 2                     # the pointer byte, where there is one
        if o in (IPOPT_SSRR, IPOPT_LSRR):
            if optlen < 3:
                return optptr + 1 - iph
            if buf[p] < 4:
                return p - iph
            if opt.srr:                    # RFC 1812 5.2.4.1: at most one
                return optptr - iph
            opt.is_strictroute = o == IPOPT_SSRR
            opt.srr = optptr - iph
        elif o == IPOPT_RR:
            if opt.rr:
                return optptr - iph
            if optlen < 3:
                return optptr + 1 - iph
            ptr = buf[p]
            if ptr < 4:
                return p - iph
            if ptr <= optlen:
                if ptr + 3 > optlen:
                    return p - iph
                if rt is not None:
                    _put32(buf, optptr + ptr - 1, fib_compute_spec_dst(skb))
                    opt.is_changed = True
                buf[p] = ptr + 4
                opt.rr_needaddr = True
            opt.rr = optptr - iph
        elif o == IPOPT_TIMESTAMP:
            if opt.ts:
                return optptr - iph
            if optlen < 4:
                return optptr + 1 - iph
            ptr = buf[p]
            if ptr < 5:
                return p - iph
            if ptr <= optlen:
                timeptr = -1
                if ptr + 3 > optlen:
                    return p - iph
                flags = buf[optptr + 3] & 0xF
                if flags == IPOPT_TS_TSONLY:
                    opt.ts = optptr - iph
                    if skb is not None:
                        timeptr = optptr + ptr - 1
                    opt.ts_needtime = True
                    buf[p] = ptr + 4
                elif flags == IPOPT_TS_TSANDADDR:
                    if ptr + 7 > optlen:
                        return p - iph
                    opt.ts = optptr - iph
                    if rt is not None:
                        _put32(buf, optptr + ptr - 1, fib_compute_spec_dst(skb))
                        timeptr = optptr + ptr + 3
                    opt.ts_needaddr = True
                    opt.ts_needtime = True
                    buf[p] = ptr + 8
                elif flags == IPOPT_TS_PRESPEC:
                    if ptr + 7 > optlen:
                        return p - iph
                    opt.ts = optptr - iph
                    from .route import RTN_UNICAST, inet_addr_type
                    if inet_addr_type(net, _get32(buf, optptr + ptr - 1)) != RTN_UNICAST:
                        if skb is not None:
                            timeptr = optptr + ptr + 3
                        opt.ts_needtime = True
                        buf[p] = ptr + 8
                # other flags: accepted from the wire untouched (only a local
                # sender without CAP_NET_RAW is refused them)
                if timeptr >= 0:
                    _put32(buf, timeptr, inet_current_timestamp(net))
                    opt.is_changed = True
            else:
                overflow = buf[optptr + 3] >> 4
                if overflow == 15:
                    return optptr + 3 - iph
                opt.ts = optptr - iph
                if skb is not None:
                    buf[optptr + 3] = (buf[optptr + 3] & 0xF) | ((overflow + 1) << 4)
                    opt.is_changed = True
        elif o == IPOPT_RA:
            if optlen < 4:
                return optptr + 1 - iph
            if buf[p] == 0 and buf[optptr + 3] == 0:
                opt.router_alert = optptr - iph
        elif o == IPOPT_CIPSO:
            if opt.cipso:
                return optptr - iph
            opt.cipso = optptr - iph
            bad = cipso_v4_validate(buf, optptr)
            if bad:
                return optptr + bad - iph
        # IPOPT_SEC, IPOPT_SID and unknown options pass (from the wire)
        l -= optlen
        optptr += optlen
    return -1


def ip_options_compile(net, opt, skb):
    """Check a received packet's options (ip_options_compile); a bad one gets an
    ICMP Parameter Problem pointing at the offending byte. Returns 0 or -EINVAL."""
    bad = __ip_options_compile(net, opt, skb.buf, skb.network_header, skb)
    if bad < 0:
        return 0
    from .icmp import icmp_send
    icmp_send(skb, ICMP_PARAMETERPROB, 0, (bad & 0xFF) << 24)
    return -errno.EINVAL


def ip_rcv_options(skb, dev):
    """A received header with options (ip_rcv_options, after routing): compile
    them (InHdrErrors when bad) and refuse source routes unless accept_source_route.
    Returns True when the packet must be dropped."""
    net = dev.net
    # The options are rewritten in place: make the header ours (skb_cow).
    if skb_cow(skb, skb.data - skb.head):
        net.mib["Ip"]["InDiscards"] += 1
        return True
    nh = skb.network_header
    opt = IpOptions((skb.buf[nh] & 15) * 4 - 20)
    skb.cb = opt
    if ip_options_compile(net, opt, skb):
        net.mib["Ip"]["InHdrErrors"] += 1
        return True
    if opt.srr:
        from .devinet import IN_DEV_ANDCONF
        if dev.ip_ptr is not None and not IN_DEV_ANDCONF(dev, "accept_source_route"):
            return True
        if ip_options_rcv_srr(skb, dev):
            return True
    return False


def ip_options_rcv_srr(skb, dev):
    """A source-routed packet addressed to us: route it to its next listed hop
    (ip_options_rcv_srr). Returns 0, or -EINVAL to drop it."""
    from .icmp import icmp_send
    from .route import RTN_LOCAL, RTN_UNICAST, ip_route_input_noref
    opt = skb.cb
    rt = skb.dst
    if rt is None:
        return 0
    if skb.pkt_type != PACKET_HOST:
        return -errno.EINVAL
    if rt.rt_type == RTN_UNICAST:
        if not opt.is_strictroute:
            return 0
        icmp_send(skb, ICMP_PARAMETERPROB, 0, 16 << 24)
        return -errno.EINVAL
    if rt.rt_type != RTN_LOCAL:
        return -errno.EINVAL
    buf = skb.buf
    nh = skb.network_header
    optptr = nh + opt.srr
    srrspace = buf[optptr + 1]
    srrptr = buf[optptr + 2]
    saddr = _get32(buf, nh + 12)
    nexthop = 0
    while srrptr <= srrspace:
        if srrptr + 3 > srrspace:
            icmp_send(skb, ICMP_PARAMETERPROB, 0, ((opt.srr + 2) & 0xFF) << 24)
            return -errno.EINVAL
        nexthop = _get32(buf, optptr + srrptr - 1)
        old = skb.dst
        skb.dst = None
        err = ip_route_input_noref(skb, nexthop, saddr, buf[nh + 1], dev)
        rt2 = skb.dst
        if err or rt2 is None or rt2.rt_type not in (RTN_UNICAST, RTN_LOCAL):
            skb.dst = old
            return -errno.EINVAL
        if rt2.rt_type != RTN_LOCAL:
            break
        # Superfast 8) loopback forward: the next hop is us too.
        _put32(buf, nh + 16, nexthop)
        opt.is_changed = True
        srrptr += 4
    if srrptr <= srrspace:
        opt.srr_is_hit = True
        opt.nexthop = nexthop
        opt.is_changed = True
    return 0


def ip_forward_options(skb):
    """Before a forwarded packet leaves: our address into RR, the source route
    advanced, and the header checksum redone if anything changed."""
    from .ip_output import ip_send_check
    opt = skb.cb
    rt = skb.dst
    buf = skb.buf
    raw = skb.network_header
    if opt.rr_needaddr:
        optptr = raw + opt.rr
        _put32(buf, optptr + buf[optptr + 2] - 5, ip_rt_get_source(skb, rt))
        opt.is_changed = True
    if opt.srr_is_hit:
        optptr = raw + opt.srr
        srrspace = buf[optptr + 1]
        srrptr = buf[optptr + 2]
        while srrptr <= srrspace:
            if srrptr + 3 > srrspace:
                break
            if _get32(buf, optptr + srrptr - 1) == opt.nexthop:
                break
            srrptr += 4
        if srrptr + 3 <= srrspace:
            opt.is_changed = True
            _put32(buf, raw + 16, opt.nexthop)
            _put32(buf, optptr + srrptr - 1, ip_rt_get_source(skb, rt))
            buf[optptr + 2] = srrptr + 4
        if opt.ts_needaddr:
            optptr = raw + opt.ts
            _put32(buf, optptr + buf[optptr + 2] - 9, ip_rt_get_source(skb, rt))
            opt.is_changed = True
    if opt.is_changed:
        opt.is_changed = False
        ip_send_check(buf, raw)


def ip_options_echo(net, skb):
    """The options for a reply to skb (ip_options_echo): RR and TS copied with
    room kept for us, the source route reversed. Returns an IpOptions (optlen 0
    when there is nothing to echo), or None when the options cannot be answered."""
    from .route import RTN_UNICAST, inet_addr_type
    dopt = IpOptions()
    sopt = IPCB_opt(skb)
    if sopt is None or sopt.optlen == 0:
        return dopt
    sptr = skb.network_header
    buf = skb.buf
    d = bytearray()
    daddr = fib_compute_spec_dst(skb)
    if sopt.rr:
        optlen = buf[sptr + sopt.rr + 1]
        soffset = buf[sptr + sopt.rr + 2]
        dopt.rr = len(d) + 20
        start = len(d)
        d += buf[sptr + sopt.rr:sptr + sopt.rr + optlen]
        if sopt.rr_needaddr and soffset <= optlen:
            if soffset + 3 > optlen:
                return None
            d[start + 2] = soffset + 4
            dopt.rr_needaddr = True
    if sopt.ts:
        optlen = buf[sptr + sopt.ts + 1]
        soffset = buf[sptr + sopt.ts + 2]
        dopt.ts = len(d) + 20
        start = len(d)
        d += buf[sptr + sopt.ts:sptr + sopt.ts + optlen]
        if soffset <= optlen:
            if sopt.ts_needaddr:
                if soffset + 3 > optlen:
                    return None
                dopt.ts_needaddr = True
                soffset += 4
            if sopt.ts_needtime:
                if soffset + 3 > optlen:
                    return None
                if d[start + 3] & 0xF != IPOPT_TS_PRESPEC:
                    dopt.ts_needtime = True
                    soffset += 4
                else:
                    dopt.ts_needtime = False
                    if soffset + 7 <= optlen:
                        addr = _get32(d, start + soffset - 1)
                        if inet_addr_type(net, addr) != RTN_UNICAST:
                            dopt.ts_needtime = True
                            soffset += 8
            d[start + 2] = soffset & 0xFF
    if sopt.srr:
        start = sptr + sopt.srr
        optlen = buf[start + 1]
        soffset = buf[start + 2]
        doffset = 0
        faddr = 0
        if soffset > optlen:
            soffset = optlen + 1
        soffset -= 4
        hops = bytearray(max(0, optlen))
        if soffset > 3:
            faddr = _get32(buf, start + soffset - 1)
            soffset -= 4
            doffset = 4
            while soffset > 3:
                hops[doffset - 1:doffset + 3] = buf[start + soffset - 1:start + soffset + 3]
                soffset -= 4
                doffset += 4
            # RFC 1812 requires to fix illegal source routes.
            if buf[sptr + 12:sptr + 16] == buf[start + soffset + 3:start + soffset + 7]:
                doffset -= 4
        if doffset > 3:
            dopt.faddr = faddr
            # the reversed route, whose last slot (the final destination) the
            # sender fills in: ip_options_build
            srr = bytearray(doffset + 3)
            srr[0] = buf[start]
            srr[1] = doffset + 3
            srr[2] = 4
            srr[3:doffset - 1] = hops[3:doffset - 1]
            _put32(srr, doffset - 1, daddr)
            dopt.srr = len(d) + 20
            d += srr
            dopt.is_strictroute = sopt.is_strictroute
    if sopt.cipso:
        optlen = buf[sptr + sopt.cipso + 1]
        dopt.cipso = len(d) + 20
        d += buf[sptr + sopt.cipso:sptr + sopt.cipso + optlen]
    while len(d) & 3:
        d.append(IPOPT_END)
    if len(d) > 40:
        return None
    dopt.optlen = len(d)
    dopt.data = bytes(d)
    return dopt


def ip_options_build(net, buf, iph, opt, daddr, saddr):
    """Write opt into a header we are building at buf[iph] (ip_options_build, not a
    fragment): the final destination into the source route, our address and the
    time into RR/TS. saddr is the packet's source (an output route's choice)."""
    buf[iph + 20:iph + 20 + opt.optlen] = opt.data
    if opt.srr:
        _put32(buf, iph + opt.srr + buf[iph + opt.srr + 1] - 4, daddr)
    if opt.rr_needaddr:
        _put32(buf, iph + opt.rr + buf[iph + opt.rr + 2] - 5, saddr)
    if opt.ts_needaddr:
        _put32(buf, iph + opt.ts + buf[iph + opt.ts + 2] - 9, saddr)
    if opt.ts_needtime:
        _put32(buf, iph + opt.ts + buf[iph + opt.ts + 2] - 5, inet_current_timestamp(net))


def ip_options_fragment(hdr):
    """The header for fragments after the first: options not marked 'copied' become
    NOOPs (ip_options_fragment). hdr is a bytearray of the whole IP header."""
    l = len(hdr) - 20
    p = 20
    while l > 0:
        o = hdr[p]
        if o == IPOPT_END:
            return
        if o == IPOPT_NOOP:
            l -= 1
            p += 1
            continue
        if l < 2:
            return
        optlen = hdr[p + 1]
        if optlen < 2 or optlen > l:
            return
        if not IPOPT_COPIED(o):
            hdr[p:p + optlen] = bytes([IPOPT_NOOP]) * optlen
        l -= optlen
        p += optlen
