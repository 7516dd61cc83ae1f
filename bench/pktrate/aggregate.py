#!/usr/bin/python3
"""Turns the per-run records of tools/pktrate.sh into a terminal table, latest.json and RESULTS-e2e.md.

Standard library only. Input: one JSON object per line (runs.jsonl), written by bench/pktrate/lib.sh.
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone

# figure key, column title, unit, better ("hi"/"lo"), decimals
FIGURES = [
    ("rate_kpps", "64B delivered", "kpps", "hi", 0),
    ("offered_kpps", "64B offered", "kpps", "hi", 0),
    ("drop_pct", "64B drop", "%", "lo", 1),
    ("sw_loss_pct", "lost in switch", "%", "lo", 1),
    ("cpu_s_per_mpkt", "CPU/Mpkt", "s", "lo", 2),
    ("sink_kpps", "64B to a sink", "kpps", "hi", 0),
    ("sink_cpu_s_per_mpkt", "CPU/Mpkt, sink", "s", "lo", 2),
    ("flowsetup_kfps", "new flows/s", "k", "hi", 0),
    ("flowsetup_cpu_us", "CPU/new flow", "us", "lo", 2),
    ("flowsetup_mf_kfps", "new flows/s, OVS megaflows on", "k", "hi", 0),
    ("tcp1_gbps", "TCP 1 stream", "Gbit/s", "hi", 2),
    ("tcp4_gbps", "TCP 4 streams", "Gbit/s", "hi", 2),
    ("rtt_ms", "ping RTT avg", "ms", "lo", 3),
]
RATIO_FIGS = ["rate_kpps", "cpu_s_per_mpkt", "sink_kpps", "sink_cpu_s_per_mpkt", "flowsetup_kfps", "flowsetup_cpu_us", "tcp1_gbps", "tcp4_gbps", "rtt_ms"]


def values_of(rec):
    """The figures one run record contributes."""
    f = rec["fig"]
    out = {}
    if f == "rate":
        w = rec["window_s"] or 1.0
        out["rate_kpps"] = rec["delivered"] / w / 1e3
        # What trafgen handed to gen's interface: sent, plus dropped at that interface's queue (a TAP
        # whose reader falls behind drops there and counts tx_dropped, not tx_packets).
        offered = rec["offered"] + rec.get("gen_tx_dropped", 0)
        out["offered_kpps"] = offered / w / 1e3
        if offered > 0:
            out["drop_pct"] = max(0.0, 100.0 * (1.0 - rec["delivered"] / offered))
        if rec.get("sw_in_rx"):
            # reached the switch's ingress interface but never left towards rcv
            out["sw_loss_pct"] = max(0.0, 100.0 * (1.0 - rec["delivered"] / rec["sw_in_rx"]))
        cpu = rec["softirq_cpu_s"] if rec["cpu_kind"] == "softirq" else rec["switch_cpu_s"]
        if rec["delivered"] > 0:
            out["cpu_s_per_mpkt"] = cpu / (rec["delivered"] / 1e6)
    elif f == "rate_sink":
        w = rec["window_s"] or 1.0
        out["sink_kpps"] = rec["delivered"] / w / 1e3
        cpu = rec["softirq_cpu_s"] if rec["cpu_kind"] == "softirq" else rec["switch_cpu_s"]
        if rec["delivered"] > 0:
            out["sink_cpu_s_per_mpkt"] = cpu / (rec["delivered"] / 1e6)
    elif f in ("flowsetup", "flowsetup_megaflows"):
        # Every delivered frame had a port pair of its own: one flow set up (slow path, upcall) per frame.
        w = rec["window_s"] or 1.0
        key = "flowsetup_kfps" if f == "flowsetup" else "flowsetup_mf_kfps"
        out[key] = rec["delivered"] / w / 1e3
        cpu = rec["softirq_cpu_s"] if rec["cpu_kind"] == "softirq" else rec["switch_cpu_s"]
        if f == "flowsetup" and rec["delivered"] > 0:
            out["flowsetup_cpu_us"] = cpu / rec["delivered"] * 1e6
    elif f in ("tcp1", "tcp4"):
        if rec.get("gbps") is not None:
            out[f + "_gbps"] = rec["gbps"]
    elif f == "ping":
        if rec.get("rtt_avg_ms") is not None:
            out["rtt_ms"] = rec["rtt_avg_ms"]
    return out


def summarize(vals):
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def fmt(x, dec):
    return "-" if x is None else f"{x:,.{dec}f}"


RING_LOSSES = ("rx-ring-full-drops", "rx-truncated")


def port_drops(p, c, quote=""):
    """One port's drop counters as the notes print them; ring losses only where the port has them (afpacket)."""
    ring = "".join(f" {k}={c[k]}" for k in RING_LOSSES if k in c)
    return f"{quote}{p}{quote} rxDrops={c['rxDrops']} txDrops={c['txDrops']}{ring}"


def vswitchd_drops(raw_dir, dp):
    """Port drop counters and drop reasons from vswitchd's /v1/stats at the end of each round, summed
    over the rounds (each round starts a fresh vswitchd)."""
    ports, drops, tags = {}, {}, []
    prefix = f"{dp}-r"
    rounds = {os.path.basename(f)[len(prefix):].split("-", 1)[0] for f in glob.glob(os.path.join(raw_dir, prefix + "*-stats.json"))}
    for r in sorted((x for x in rounds if x.isdigit()), key=int):
        for tag in ("end", "after-rate", "after-fail"):
            p = os.path.join(raw_dir, f"{dp}-r{r}-{tag}-stats.json")
            if not (os.path.exists(p) and os.path.getsize(p) > 0):
                continue
            try:
                s = json.load(open(p))
            except ValueError:
                continue
            for pt in s.get("ports", []):
                acc = ports.setdefault(pt["name"], {})
                for k, v in pt["counters"].items():
                    acc[k] = acc.get(k, 0) + v
                # An AF_PACKET port's losses in the kernel, before the switch saw the frame (a full ring, a frame
                # larger than a slot): the port's own counters, not in rxDrops.
                for k in RING_LOSSES:
                    if k in (pt.get("details") or {}):
                        acc[k] = acc.get(k, 0) + pt["details"][k]
            for d in s.get("drops", []):
                if d.get("packets"):
                    drops[d["reason"]] = drops.get(d["reason"], 0) + d["packets"]
            tags.append(f"r{r}-{tag}")
            break
    return {"snapshot": f"summed over {len(tags)} round(s)", "ports": ports, "drops": drops} if tags else None


def afpacket_socket_drops(raw_dir, dp):
    """Sum of the d<N> fields of `ss -0 -m` (AF_PACKET receive-buffer drops) in the switch namespace, over the rounds."""
    import re
    total, found = 0, False
    for p in glob.glob(os.path.join(raw_dir, f"{dp}-r*-end-links.txt")):
        for m in re.finditer(r"skmem:\(([^)]*)\)", open(p).read()):
            for f in m.group(1).split(","):
                if f.startswith("d") and f[1:].isdigit():
                    total += int(f[1:]); found = True
    return total if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs-file", required=True)
    ap.add_argument("--notes-file", required=True)
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--raw-dir", required=True)
    ap.add_argument("--started", default="")
    ap.add_argument("--finished", default="")
    ap.add_argument("--mode", default="normal")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate-window", type=float, default=5)
    ap.add_argument("--iperf-t", type=int, default=5)
    ap.add_argument("--ping-count", type=int, default=20)
    ap.add_argument("--datapaths", default="")
    a = ap.parse_args()

    recs = [json.loads(l) for l in open(a.runs_file) if l.strip()]
    notes = []
    for l in open(a.notes_file):   # a note said in every round is kept once
        if l.strip() and (n := json.loads(l)) not in notes:
            notes.append(n)
    dps = [d for d in a.datapaths.split(",") if d]
    skipped = {n["dp"]: n["text"] for n in notes if n["kind"] == "skip"}

    per_dp = {}
    for dp in dps:
        fig_vals = {k: [] for k, *_ in FIGURES}
        for r in (x for x in recs if x["dp"] == dp):
            for k, v in values_of(r).items():
                fig_vals[k].append(v)
        per_dp[dp] = {k: summarize(v) for k, v in fig_vals.items()}

    def med(dp, k):
        s = per_dp.get(dp, {}).get(k)
        return s["median"] if s else None

    ratios = {}
    pairs = [(vs, ref, refname) for vs in ("vswitch-tap", "vswitch-afpacket", "vswitch-afxdp")
             for ref, refname in (("linux-bridge", "bridge"), ("ovs-netdev", "ovs"))]
    pairs.append(("vswitch-afxdp", "vswitch-afpacket", "afpacket"))
    pairs.append(("vswitch-vxlan", "kernel-vxlan", "kernel-vxlan"))
    pairs.append(("vswitch-vxlan6", "kernel-vxlan6", "kernel-vxlan6"))
    pairs.append(("vswitch-vxlan6", "vswitch-vxlan", "vswitch-vxlan"))
    for vs, ref, refname in pairs:
        row = {}
        for k in RATIO_FIGS:
            x, y = med(vs, k), med(ref, k)
            row[k] = (x / y) if (x is not None and y) else None
        if any(v is not None for v in row.values()):
            ratios[f"{vs}/{refname}"] = row

    uname = platform.release()
    nproc = os.cpu_count()
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except StopIteration:
        cpu_model = "?"
    loads = [r["loadavg"] for r in recs]
    load1 = [float(l.split()[0]) for l in loads]

    vsd = {dp: vswitchd_drops(a.raw_dir, dp) for dp in dps if dp.startswith("vswitch")}
    ssd = {dp: afpacket_socket_drops(a.raw_dir, dp) for dp in dps}

    result = {
        "date": a.started or datetime.now(timezone.utc).isoformat(),
        "finished": a.finished,
        "mode": a.mode,
        "machine": {"uname_r": uname, "nproc": nproc, "cpu": cpu_model},
        "params": {"runs": a.runs, "rate_window_s": a.rate_window, "iperf_t_s": a.iperf_t,
                   "ping_count": a.ping_count, "frame_bytes": 64},
        "datapaths": dps,
        "skipped": skipped,
        "figures": {dp: per_dp[dp] for dp in dps if dp not in skipped},
        "ratios": ratios,
        "vswitchd_stats_end": vsd,
        "afpacket_socket_drops_end": ssd,
        "notes": notes,
        "runs": recs,
    }
    os.makedirs(os.path.dirname(a.out_json), exist_ok=True)
    with open(a.out_json, "w") as f:
        json.dump(result, f, indent=1)

    # ---- terminal table ----
    shown = [dp for dp in dps if dp not in skipped]
    heads = ["datapath"] + [f"{t} ({u})" for _, t, u, _, _ in FIGURES]
    rows = []
    for dp in shown:
        row = [dp]
        for k, _, _, _, dec in FIGURES:
            s = per_dp[dp][k]
            if s is None:
                row.append("-")
            elif s["n"] > 1:
                row.append(f"{fmt(s['median'], dec)} [{fmt(s['min'], dec)}..{fmt(s['max'], dec)}]")
            else:
                row.append(fmt(s["median"], dec))
        rows.append(row)
    rrows = []
    for name, row in ratios.items():
        rrows.append([name] + [("-" if row.get(k) is None else f"{row[k]:.2f}x") if k in RATIO_FIGS else ""
                               for k, *_ in FIGURES])

    def table(head, body):
        w = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
        line = lambda r: "  ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in enumerate(r))
        return "\n".join([line(head), "  ".join("-" * x for x in w)] + [line(r) for r in body])

    print()
    print(f"pktrate {a.mode} mode, {a.runs} run(s) each, median [min..max]; {uname}, {nproc} CPUs; "
          f"load1 during runs {min(load1, default=0):.2f}..{max(load1, default=0):.2f}")
    print(table(heads, rows))
    if rrows:
        print()
        print("ratios of medians (rate, TCP: higher is better for vswitch; CPU/Mpkt, RTT: lower is better)")
        print(table(["ratio"] + [t for _, t, *_ in FIGURES], rrows))
    for dp, why in skipped.items():
        print(f"skipped {dp}: {why}")
    for n in notes:
        if n["kind"] == "warn":
            print(f"warning {n['dp']}: {n['text']}")
    for dp, v in vsd.items():
        if v:
            pd = ", ".join(port_drops(p, c) for p, c in v["ports"].items())
            print(f"vswitchd {dp} ({v['snapshot']}): {pd}; drop reasons: {v['drops'] or 'none'}")
    for dp, d in ssd.items():
        if d:
            print(f"AF_PACKET socket drops (ss -0 -m, d field) in {dp}'s switch namespace: {d}")
    print(f"\nwrote {a.out_json} and {a.out_md}")

    # ---- markdown ----
    md = []
    md.append("# End-to-end packet rates: vswitchd vs the Linux bridge vs Open vSwitch (userspace)\n")
    md.append("Written by `tools/pktrate.sh` (see `bench/pktrate/README.md`). Do not edit by hand; rerun.\n")
    md.append(f"- date: {result['date']} (finished {a.finished})")
    md.append(f"- machine: `uname -r` {uname}, {nproc} CPUs ({cpu_model}); shared with other builds, so noisy")
    md.append(f"- mode: {a.mode}; {a.runs} run(s) per figure; 64-byte frames for {a.rate_window:g} s "
              f"(trafgen -P 1); iperf3 -t {a.iperf_t}; ping -c {a.ping_count} -i 0.05")
    md.append(f"- load average (1 min) at the start of each run: {min(load1, default=0):.2f} .. "
              f"{max(load1, default=0):.2f} (per run in `results/latest.json`)\n")
    md.append("Cells: median, and [min..max] when there was more than one run.\n")
    md.append("| " + " | ".join(heads) + " |")
    md.append("|" + "---|" * len(heads))
    for r in rows:
        md.append("| " + " | ".join(r) + " |")
    if rrows:
        md.append("\nRatios of medians (rate, TCP: above 1 means vswitchd is faster; CPU/Mpkt, RTT: below 1 means vswitchd is cheaper/quicker):\n")
        rh = ["ratio"] + [t for k, t, *_ in FIGURES if k in RATIO_FIGS]
        md.append("| " + " | ".join(rh) + " |")
        md.append("|" + "---|" * len(rh))
        for name, row in ratios.items():
            md.append("| " + " | ".join([name] + ["-" if row[k] is None else f"{row[k]:.2f}x" for k in RATIO_FIGS]) + " |")
    md.append("\n## Notes\n")
    md.append("- Topology: namespaces gen (10.61.0.1) and rcv (10.61.0.2), each with one interface to a switch "
              "that runs in a third namespace of its own (not the root namespace). vswitchd: 1 datapath thread, "
              "busyPoll off. Linux bridge and OVS: veth pairs with the kernel's default offloads.")
    md.append("- 64B delivered = delta of rcv's `rx_packets` / window; offered = delta of gen's `tx_packets` + `tx_dropped` "
              "(a TAP whose reader falls behind drops at its queue and counts tx_dropped); "
              "drop = 1 - delivered/offered; lost in switch = 1 - delivered / rx_packets of the switch's "
              "gen-facing veth end (veth datapaths only: frames that reached the switch and never left it). trafgen shares the 2 cores with the switch and the receiver.")
    md.append("- CPU/Mpkt: CPU seconds (utime+stime, all threads) of vswitchd / ovs-vswitchd during the 64B window "
              "per million packets delivered. For the Linux bridge it is the machine-wide softirq time "
              "(/proc/stat) instead, which also includes the generator's and receiver's own softirq work, "
              "so it is not directly comparable to the process figures.")
    for dp, why in skipped.items():
        md.append(f"- skipped {dp}: {why}")
    for n in notes:
        if n["kind"] in ("warn", "info"):
            md.append(f"- {n['dp']}: {n['text']}")
    for dp, v in vsd.items():
        if v:
            pd = ", ".join(port_drops(p, c, "`") for p, c in v["ports"].items())
            md.append(f"- vswitchd counters of {dp}, summed over the rounds: {pd}; drop reasons: {v['drops'] or 'none'}")
    for dp, d in ssd.items():
        if d:
            md.append(f"- AF_PACKET socket drops (`ss -0 -m`, d field) in {dp}'s switch namespace, summed over the rounds: {d}")
    with open(a.out_md, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
