"""Checking an outbound live packet against the script's packet.

packetdrill: run_packet.c verify_outbound_live_packet and its helpers
(map_outbound_live_packet, verify_ipv4, verify_tcp, verify_udp,
verify_outbound_live_tcp_options, verify_outbound_live_payload), in the same
order and with the same messages, followed by the `script packet:` and
`actual packet:` dumps.
"""
from .packet import (
    FLAG_BITS, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCPOPT_EOL, TCPOPT_NOP,
    TCPOPT_TIMESTAMP, encode_tcp_options, packet_to_string,
)


def check_field(name, expected, actual):
    if actual != expected:
        return "live packet field %s: expected: %u (0x%x) vs actual: %u (0x%x)" % (
            name, expected, expected, actual, actual)
    return None


def _script_dump(pkt, usecs):
    plen = pkt.payload_len
    return "script packet: %9.6f %s" % (usecs / 1e6, packet_to_string(
        pkt.proto, pkt.flags, pkt.seq, pkt.end_seq, plen, pkt.ack or 0, pkt.win, pkt.options,
        pkt.options_nocheck, pkt.udp_len))


def _actual_dump(lp, seq, ack, usecs, opts):
    plen = len(lp.payload)
    if lp.proto == IPPROTO_TCP:
        text = packet_to_string(lp.proto, lp.flags, seq, seq + plen, plen, ack, lp.win, opts)
    else:
        text = packet_to_string(lp.proto, 0, 0, 0, plen, 0, None, [], udp_len=plen)
    return "actual packet: %9.6f %s" % (usecs / 1e6, text)


def verify_outbound(runner, s, pkt, lp, event, live_usecs):
    """None if lp is what the script expects (fields, options, payload, time)."""
    cfg = runner.config
    seq = ack = 0
    opts = list(lp.options)
    if lp.proto == IPPROTO_TCP:
        seq = (lp.seq - s.live_local_isn + s.script_local_isn) & 0xFFFFFFFF
        ack = (lp.ack - s.live_remote_isn + s.script_remote_isn) & 0xFFFFFFFF
        # map_outbound_live_packet: the TS val into script space.
        script_ts = next((v for k, v in pkt.options if k == TCPOPT_TIMESTAMP), None)
        for i, (kind, v) in enumerate(opts):
            if kind == TCPOPT_TIMESTAMP and script_ts is not None:
                s.ts_val_map[script_ts[0]] = v[0]
                if not s.found_first_ts:
                    s.found_first_ts = True
                    s.first_script_ts_val, s.first_actual_ts_val = script_ts[0], v[0]
                opts[i] = (kind, ((s.first_script_ts_val + v[0] - s.first_actual_ts_val)
                                  & 0xFFFFFFFF, v[1]))
    err = _verify(runner, s, pkt, lp, seq, ack, opts, event, live_usecs, cfg)
    if err is None:
        return None
    return "%s\n%s\n%s" % (err, _script_dump(pkt, event.abs_time),
                           _actual_dump(lp, seq, ack, live_usecs, opts))


def _verify(runner, s, pkt, lp, seq, ack, opts, event, live_usecs, cfg):
    if not lp.ip_csum_ok:
        return "bad outbound IP checksum"
    if lp.proto != pkt.proto:
        names = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_ICMP: "ICMPV4"}
        return "live packet header layer 1: expected: %s header vs actual: %s header" % (
            names.get(pkt.proto, "?"), names.get(lp.proto, "?"))
    l4_len = lp.tot_len - lp.ihl * 4
    if pkt.proto == IPPROTO_TCP:
        script_opts = encode_tcp_options(pkt.options)
        script_opts_len = len(script_opts) + (-len(script_opts) % 4)
        allowance = (lp.doff * 4 - 20) if pkt.options_nocheck else 0
        script_tot = 20 + 20 + script_opts_len + pkt.payload_len
    elif pkt.proto == IPPROTO_UDP:
        allowance = 0
        script_tot = 20 + 8 + pkt.udp_len
    else:
        allowance = 0
        script_tot = lp.tot_len
    for name, exp, act in (("ipv4_version", 4, lp.raw[0] >> 4),
                           ("ipv4_protocol", pkt.proto, lp.proto),
                           ("ipv4_header_length", 5, lp.ihl),
                           ("ipv4_total_length", script_tot + allowance, lp.tot_len)):
        e = check_field(name, exp, act)
        if e:
            return e
    if pkt.proto == IPPROTO_UDP:
        e = check_field("udp_len", 8 + pkt.udp_len, lp.udp_len)
        if e:
            return e
    elif pkt.proto == IPPROTO_TCP:
        f = pkt.flags
        lf = lp.flags
        doff = (20 + script_opts_len) // 4 + allowance // 4

        def bit(flags, c):
            return 1 if flags & FLAG_BITS[c] else 0
        checks = [("tcp_data_offset", doff, lp.doff)]
        for name, c in (("tcp_fin", "F"), ("tcp_syn", "S"), ("tcp_rst", "R"), ("tcp_psh", "P"),
                        ("tcp_ack", "."), ("tcp_urg", "U"), ("tcp_ece", "E"), ("tcp_cwr", "W")):
            checks.append((name, bit(f, c), bit(lf, c)))
        checks += [("tcp_ae", 0, lp.res1 & 1), ("tcp_reserved_bits", 0, lp.res1 >> 1),
                   ("tcp_seq", pkt.seq & 0xFFFFFFFF, seq),
                   ("tcp_ack_seq", (pkt.ack or 0) & 0xFFFFFFFF, ack)]
        if pkt.win is not None:
            checks.append(("tcp_window", pkt.win, lp.win))
        checks.append(("tcp_urg_ptr", pkt.urg, lp.urg))
        for name, exp, act in checks:
            e = check_field(name, exp, act)
            if e:
                return e
        if not pkt.options_nocheck:
            e = _verify_options(cfg, pkt.options, opts)
            if e:
                return e
    if pkt.proto == IPPROTO_ICMP and pkt.icmp is not None:
        for name, exp, act in (("icmp_type", pkt.icmp.type, lp.icmp_type),
                               ("icmp_code", pkt.icmp.code, lp.icmp_code)):
            e = check_field(name, exp, act)
            if e:
                return e
    if pkt.proto != IPPROTO_ICMP and lp.payload != bytes(pkt.payload_len):
        return "incorrect outbound data payload"
    del l4_len
    return runner.verify_time(event, event.time_type, event.abs_time, event.abs_end,
                              live_usecs, "outbound packet", runner._last_time())


def _verify_options(cfg, script_opts, actual_opts):
    """verify_outbound_live_tcp_options: same kinds in the same order, same values
    (TS val only within --tolerance_usecs when --tcp_ts_tick_usecs is given)."""
    def significant(opts):
        # the live block is padded to 32 bits; the script's padding is implied
        out = list(opts)
        while out and out[-1][0] == TCPOPT_EOL and len(out) > len(script_opts):
            out.pop()
        return out
    actual = significant(actual_opts)
    for i in range(max(len(script_opts), len(actual))):
        if i >= len(script_opts) or i >= len(actual) or script_opts[i][0] != actual[i][0]:
            return "bad outbound TCP options"
        kind, sv = script_opts[i]
        av = actual[i][1]
        if kind in (TCPOPT_NOP, TCPOPT_EOL):
            continue
        if kind == TCPOPT_TIMESTAMP:
            tick = cfg.tcp_ts_tick_usecs
            if tick and abs(((av[0] - sv[0] + 0x80000000) & 0xFFFFFFFF) - 0x80000000) * tick \
                    > cfg.tolerance_usecs:
                return "bad outbound TCP timestamp value, tolerance %d" % cfg.tolerance_usecs
            continue
        if len(encode_tcp_options([(kind, sv)])) != len(encode_tcp_options([(kind, av)])) \
                if not isinstance(av, bytes) else True:
            return "bad lengths for outbound TCP option %d" % kind
        if sv != av:
            return "bad value outbound TCP option %d" % kind
    return None
