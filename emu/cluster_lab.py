"""The lab's side of a cluster (emu/cluster.py): placing, forking and
waiting for the nodes on their machines, for orchestrator.Lab."""
from .client.rpc import ControlClient
from .cluster import Cluster, ClusterError, RemoteProc, place


def _lab_error(msg):
    from .orchestrator import LabError
    return LabError(msg)


def spawn_cluster(lab, env):
    """Place the nodes over the cluster's machines and fork them there."""
    try:
        lab.cluster = Cluster(lab.cluster_address)
        plan = place(lab.topo, lab.cluster.machines)
        used = sorted(set(plan.values()))
        lab.machines = [lab.cluster.machines[i] for i in used]
        lab.placement = {n: used.index(i) for n, i in plan.items()}
        for k, m in enumerate(lab.machines):
            m.nodes = tuple(n for n, i in lab.placement.items() if i == k)
        lab.cluster.start_hosts(lab.machines, lab.topo.name, lab.base, env)
        index = {n.name: i + 1 for i, n in enumerate(lab.topo.nodes)}
        assert lab.curve is not None
        for m in lab.machines:
            m.relay = m.call("start_relay", list(lab.curve), m.ip)
        for k, m in enumerate(lab.machines):
            reqs = [lab._fork_request(lab.topo.node(n), index[n]) for n in m.nodes]
            pids = m.call("spawn", reqs, list(lab.curve), m.ip)
            for n, pid in pids.items():
                m.pids.add(pid)
                lab.procs[n] = RemoteProc(m, n, pid)
                lab.nodes.setdefault(n, {}).update({
                    "pid": pid, "kind": lab.topo.node(n).kind, "machine": k,
                    "cpus": lab.topo.node(n).cpus,
                    "machine_ip": m.ip, "cmdline": None, "create_time": None,
                    "clock_offset": m.clock_offset})
    except ClusterError as e:
        raise _lab_error(str(e)) from None
    lab._progress("spawn", len(lab.procs), len(lab.topo.nodes))


def cluster_ready(lab, names, timeout):
    """Wait for the named nodes on their machines; record their tcp control endpoints."""
    assert lab.cluster is not None and lab.curve is not None
    by_machine: dict[int, list] = {}
    for n in names:
        by_machine.setdefault(lab.placement[n], []).append(n)
    ray = lab.cluster.ray
    refs = {k: lab.machines[k].actor.wait_ready.remote(ns, timeout)
            for k, ns in by_machine.items()}
    for k, ref in refs.items():
        m = lab.machines[k]
        eps, failed = ray.get(ref)
        if failed and len(failed) == 2 and isinstance(failed[1], int):
            raise _lab_error("node %s exited during boot (status %s): %s"
                           % (failed[0], failed[1], m.call("log_tail", failed[0], 5)))
        if failed:
            raise _lab_error("nodes did not start within %.0f s: %s"
                           % (timeout, ", ".join(failed)))
        for n in by_machine[k]:
            info = lab.nodes[n]
            # The lab's keys go with a tcp endpoint: lab.json is the user's own
            # (mode 0600 in a 0700 directory), as an SSH key is.
            info.update({"ctl": eps[n], "curve": list(lab.curve),
                         "sys": "%s/%s.sys" % (m.info["run_dir"], n),
                         # Programs on another host reach it through the relay
                         # (cluster_relay.py); the token tells which host is its.
                         "relay": m.relay, "machine_token": m.info["token"],
                         "log": "%s/%s.log" % (m.info["run_dir"], n)})
            old = lab.ctl.get(n)
            if old is not None:
                old.close()
            lab.ctl[n] = ControlClient(eps[n], ctx=lab.zctx, curve=lab.curve)


def respawn(lab, node, node_id):
    """A node again on its machine (a restart); returns its RemoteProc once ready."""
    assert lab.curve is not None
    m = lab.machines[lab.placement[node.name]]
    pid = m.call("spawn", [lab._fork_request(node, node_id)], list(lab.curve), m.ip)[node.name]
    m.pids.add(pid)
    remote = RemoteProc(m, node.name, pid)
    lab.procs[node.name] = remote
    lab.nodes[node.name]["pid"] = pid
    cluster_ready(lab, [node.name], 30.0)
    return remote
