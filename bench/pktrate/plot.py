#!/usr/bin/python3
"""Draws latest.json of tools/pktrate.sh as one PNG: a panel per figure, a bar per datapath
(median) with its min..max range. Needs Debian's python3-matplotlib (run with /usr/bin/python3)."""
import json
import sys

import matplotlib
matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

PANELS = [
    ("rate_kpps", "64-byte frames delivered (kpps)", "higher is better"),
    ("tcp1_gbps", "TCP, 1 stream (Gbit/s)", "higher is better"),
    ("tcp4_gbps", "TCP, 4 streams (Gbit/s)", "higher is better"),
    ("rtt_ms", "ping RTT (ms)", "lower is better"),
    ("flowsetup_kfps", "new flows per second (k), random UDP ports", "higher is better"),
    ("cpu_s_per_mpkt", "CPU s per million packets", "lower is better"),
]
COLORS = {"vswitch-tap": "#1f77b4", "vswitch-afpacket": "#17becf", "vswitch-afxdp": "#2ca02c", "linux-bridge": "#7f7f7f", "ovs-netdev": "#d62728"}


def main(src, dst):
    data = json.load(open(src))
    dps = [d for d in data["datapaths"] if d in data["figures"]]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 4.2))
    for ax, (key, title, hint) in zip(axes, PANELS):
        med, lo, hi, names = [], [], [], []
        for dp in dps:
            f = data["figures"][dp].get(key)
            if not f:
                continue
            names.append(dp)
            med.append(f["median"])
            lo.append(f["median"] - f["min"])
            hi.append(f["max"] - f["median"])
        ax.bar(range(len(names)), med, yerr=[lo, hi], capsize=4, color=[COLORS.get(n, "#999999") for n in names])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(hint, fontsize=8)
        for i, v in enumerate(med):
            ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"pktrate {data['mode']} run, {data['date']} ({data['machine']['nproc']} CPUs, kernel {data['machine']['uname_r']}); bars: median, lines: min..max", fontsize=9)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
