#!/usr/bin/env python3
"""Summarize a bench/deploy.sh run: print the tables and write them into the
generated section of docs/benchmarks.md (the text around it is kept)."""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys

BEGIN = "<!-- BEGIN bench/deploy.sh output: regenerated on every run, do not edit by hand -->"
END = "<!-- END bench/deploy.sh output -->"
STEPS = ["provision", "unpack", "virtualenv", "settings", "release", "collectstatic",
         "start", "check", "switch", "retire"]
TARGET_S, TARGET_RATIO = 3.0, 1.2

DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def go_duration_ms(s):
    """Milliseconds in a Go time.Duration string such as 1m2.5s or 812.3ms."""
    parts = DUR_RE.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"not a Go duration: {s!r}")
    return sum(float(n) * UNIT_MS[u] for n, u in parts)


def logfmt(line):
    """key=value pairs of a slog text line (values may be "quoted")."""
    return {m.group(1): m.group(3) if m.group(3) is not None else m.group(4)
            for m in re.finditer(r'(\w+)=("((?:[^"\\]|\\.)*)"|(\S*))', line)}


def conductor_steps(path, mark):
    """{deploy id: {step: ms}} for the step lines before and after line mark."""
    before, after = {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            if "step done" not in line:
                continue
            kv = logfmt(line)
            d = after if n >= mark else before
            d.setdefault(kv["deploy"], {})[kv["step"]] = go_duration_ms(kv["took"])
    return before, after


def ts(kv):
    return datetime.datetime.fromisoformat(kv["time"].replace("Z", "+00:00")).timestamp()


def conductor_phases(path):
    """{deploy id: (ms from the SSH session opening to the first step starting,
    ms from the last step to the SSH session ending)}, from log timestamps."""
    out, session, start, end, current = {}, None, {}, {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "time=" not in line:
                continue
            kv = logfmt(line)
            msg = kv.get("msg")
            if msg == "ssh session" and "receive-pack" in kv.get("command", ""):
                session = ts(kv)
            elif msg == "step done":
                d = kv["deploy"]
                if d not in start:
                    start[d] = (session, ts(kv) - go_duration_ms(kv["took"]) / 1000)
                current = d
            elif msg == "deploy succeeded":
                end[kv["deploy"]] = ts(kv)
            elif msg == "ssh session done" and "receive-pack" in kv.get("command", "") and current in end:
                sess, first = start[current]
                if sess is not None:
                    out[current] = ((first - sess) * 1000, (ts(kv) - end[current]) * 1000)
                current = None
    return out


def plain_steps(path, mark):
    before, after = {}, {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            kv = logfmt(line)
            if "step" not in kv:
                continue
            d = after if n >= mark else before
            d.setdefault(kv["release"], {})[kv["step"]] = float(kv["ms"])
    return before, after


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    with open("/etc/os-release") as f:
        osr = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
    return {
        "cpu": f"{nproc} × {model}",
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": osr.get("PRETTY_NAME", "").strip('"') + ", kernel " + platform.release(),
        "load": " ".join(load),
    }


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()


def tool_versions():
    def out(*cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    return {
        "python": out("/usr/bin/python3", "--version"),
        "nginx": out("/usr/sbin/nginx", "-v").replace("nginx version: ", ""),
        "git": out("git", "--version"),
    }


def fmt_s(x):
    return f"{x:.2f} s"


def fmt_ms(x):
    return f"{x:,.0f} ms" if x >= 10 else f"{x:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--serve-log", required=True)
    ap.add_argument("--serve-mark", type=int, required=True)
    ap.add_argument("--plain-steps", required=True)
    ap.add_argument("--plain-mark", type=int, required=True)
    ap.add_argument("--binary", default="unknown", help="output of `conductor version`")
    ap.add_argument("--doc", default="docs/benchmarks.md")
    a = ap.parse_args()

    runs = []  # (tool, kind, run, total s, returned s, release id)
    with open(a.results) as f:
        for line in f:
            tool, kind, run, t0, t1, t2, rel = line.rstrip("\n").split("\t")
            runs.append((tool, kind, int(run), float(t2) - float(t0), float(t1) - float(t0), rel))

    def totals(tool, kind, col=3):
        return [r[col] for r in runs if r[0] == tool and r[1] == kind]

    c_first, c_redo = totals("conductor", "first"), totals("conductor", "redeploy")
    p_first, p_redo = totals("plain", "first"), totals("plain", "redeploy")
    n = len(c_redo)

    c_before, c_after = conductor_steps(a.serve_log, a.serve_mark)
    p_before, p_after = plain_steps(a.plain_steps, a.plain_mark)

    def step_medians(by_release):
        out = {}
        for s in STEPS:
            xs = [v[s] for v in by_release.values() if s in v]
            if xs:
                out[s] = statistics.median(xs)
        return out

    def outside(tool, kind, by_release):
        """Per run: wall time to the marker minus the sum of the logged steps."""
        xs = []
        for r in runs:
            if r[0] == tool and r[1] == kind and r[5] in by_release:
                xs.append(r[3] * 1000 - sum(by_release[r[5]].values()))
        return statistics.median(xs) if xs else None

    c_med, p_med = step_medians(c_after), step_medians(p_after)
    c_first_steps, p_first_steps = step_medians(c_before), step_medians(p_before)
    c_out, p_out = outside("conductor", "redeploy", c_after), outside("plain", "redeploy", p_after)
    c_first_out, p_first_out = outside("conductor", "first", c_before), outside("plain", "first", p_before)

    ratio_first = statistics.median(c_first) / statistics.median(p_first)
    ratio_redo = statistics.median(c_redo) / statistics.median(p_redo)
    med_redo = statistics.median(c_redo)
    met_abs, met_ratio = med_redo < TARGET_S, ratio_redo <= TARGET_RATIO

    m, v = machine(), tool_versions()
    commit = git("rev-parse", "--short", "HEAD")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    L = []
    L.append(f"- **Date:** {date}")
    dirty = " — built from a work tree with uncommitted changes" if a.binary.endswith("-dirty") else ""
    L.append(f"- **Commit:** `{commit}` (HEAD at run time); the binary says `{a.binary}` "
             f"(`conductor version`, i.e. `git describe --always --dirty` when it was built){dirty}")
    L.append(f"- **Machine:** {m['cpu']}, {m['ram']} RAM, {m['os']}")
    L.append(f"- **Software:** {v['python']} (app virtualenvs), {v['nginx']}, {v['git']}")
    L.append(f"- **Load average after the run:** {m['load']} (other jobs may share this machine)")
    L.append("- **Reproduce:** `make bench` (setup + build, then `bench/deploy.sh`), "
             f"or `bench/deploy.sh` after `make build`; as root. `BENCH_N={n}` redeploys per tool.")
    L.append("")
    L.append("Wall time from the start of `git push` (Conductor) or of `bench/plain-deploy.sh deploy` "
             "(plain) until `GET /` through that tool's front nginx shows the new version marker. "
             f"First deploy: {len(c_first)} run(s) each, a new app and an empty pip cache each time, alternating which tool goes first. Code-only redeploy: {n} runs each, alternating the two tools.")
    L.append("")
    L.append("| Case | Conductor min / median / max | Plain script min / median / max | Ratio of medians (Conductor / plain) |")
    L.append("|---|---|---|---|")

    def mmm(xs):
        lo, md, hi = stats(xs)
        return f"{lo:.2f} / **{md:.2f}** / {hi:.2f} s" if len(xs) > 1 else f"**{md:.2f} s**"

    L.append(f"| First deploy (venv + pip install from PyPI) | {mmm(c_first)} | {mmm(p_first)} | {ratio_first:.2f}× |")
    L.append(f"| Code-only redeploy | {mmm(c_redo)} | {mmm(p_redo)} | **{ratio_redo:.2f}×** |")
    L.append("")
    L.append("Every redeploy, in order (s): Conductor " + ", ".join(f"{x:.2f}" for x in c_redo)
             + "; plain " + ", ".join(f"{x:.2f}" for x in p_redo) + ".")
    L.append("")
    c_ret, p_ret = totals("conductor", "redeploy", 4), totals("plain", "redeploy", 4)
    c_poll = [t - r for t, r in zip(c_redo, c_ret)]
    p_poll = [t - r for t, r in zip(p_redo, p_ret)]
    L.append(f"For Conductor, `git push` itself returned after a median {statistics.median(c_ret):.2f} s "
             "of the redeploy (the builder waits for nginx to serve the new release before the push ends); "
             f"the marker poll after it took a median {statistics.median(c_poll) * 1000:.0f} ms "
             f"(plain: script returned after {statistics.median(p_ret):.2f} s, poll {statistics.median(p_poll) * 1000:.0f} ms).")
    L.append("")
    verdict = "**met**" if met_abs and met_ratio else "**not met**"
    L.append(f"**Target** (code-only redeploy under {TARGET_S:.0f} s and within {TARGET_RATIO}× of the plain script): "
             f"{verdict} — median {med_redo:.2f} s is {'under' if met_abs else 'over'} {TARGET_S:.0f} s, "
             f"and {ratio_redo:.2f}× the plain script is {'within' if met_ratio else 'over'} {TARGET_RATIO}×.")
    L.append("")
    L.append(f"### Per-step medians, code-only redeploy ({n} runs each)")
    L.append("")
    L.append("From `step done … step=X took=…` in `conductor serve --log-level debug`'s log, and from the "
             "plain script's own per-step timer (`STATE/steps.log`).")
    L.append("")
    L.append("| Step | Conductor | Plain script | Difference |")
    L.append("|---|---:|---:|---:|")
    for s in STEPS:
        c, p = c_med.get(s), p_med.get(s)
        cs = fmt_ms(c) if c is not None else "—"
        ps = fmt_ms(p) if p is not None else "—"
        d = (c or 0) - (p or 0)
        L.append(f"| {s} | {cs} | {ps} | {d:+,.0f} ms |")
    if c_out is not None and p_out is not None:
        L.append(f"| outside the steps¹ | {fmt_ms(c_out)} | {fmt_ms(p_out)} | {c_out - p_out:+,.0f} ms |")
    sc, sp = sum(c_med.values()) + (c_out or 0), sum(p_med.values()) + (p_out or 0)
    L.append(f"| **sum of the medians**² | **{fmt_ms(sc)}** | **{fmt_ms(sp)}** | **{sc - sp:+,.0f} ms** |")
    L.append("")
    L.append("¹ Per run, the measured total minus the sum of that run's logged steps, then the median. "
             "Conductor: SSH session, `git receive-pack`, the pre-receive hook (`git archive` into the "
             "NATS object store, publishing the job), the builder picking it up, streaming the log back, "
             "the push ending, and the marker poll. Plain: bash and `git archive` start-up outside the "
             "step timers, and the marker poll.")
    phases = conductor_phases(a.serve_log)
    pre = [phases[r[5]][0] for r in runs if r[0] == "conductor" and r[1] == "redeploy" and r[5] in phases]
    post = [phases[r[5]][1] for r in runs if r[0] == "conductor" and r[1] == "redeploy" and r[5] in phases]
    if pre and c_out is not None:
        pm, qm = statistics.median(pre), statistics.median(post)
        L.append("")
        L.append(f"Conductor's time outside the steps, split with the server log's timestamps (ms resolution): "
                 f"a median {pm:.0f} ms on the server from the SSH session opening to the first step starting "
                 "(`git receive-pack`, the hook, `git archive` into NATS, queueing, the builder taking the job), "
                 f"{qm:.0f} ms from the last step to the SSH session ending, and about {c_out - pm - qm:.0f} ms "
                 "on the client (ssh start-up and key exchange, the push negotiation, the marker poll).")
    L.append("")
    L.append("² Medians do not add up exactly to the median total; the sum is a cross-check.")
    L.append("")
    L.append(f"### First deploy, per step (median of {len(c_first)} run(s) each)")
    L.append("")
    L.append("| Step | Conductor | Plain script |")
    L.append("|---|---:|---:|")
    for s in STEPS:
        c, p = c_first_steps.get(s), p_first_steps.get(s)
        L.append(f"| {s} | {fmt_ms(c) if c is not None else '—'} | {fmt_ms(p) if p is not None else '—'} |")
    if c_first_out is not None and p_first_out is not None:
        L.append(f"| outside the steps¹ | {fmt_ms(c_first_out)} | {fmt_ms(p_first_out)} |")
    L.append("")
    L.append("Both first deploys build a virtualenv with an empty pip cache and download Django and "
             "gunicorn from PyPI, so they mostly measure the network and pip; the runs alternate which tool goes first.")
    generated = "\n".join(L)

    # Terminal summary.
    print()
    print(f"{'':24} {'conductor (min/med/max)':>26} {'plain (min/med/max)':>24} {'ratio':>7}")
    for name, c, p in (("first deploy", c_first, p_first), (f"redeploy (n={n})", c_redo, p_redo)):
        cl, cm, ch = stats(c)
        pl, pm, ph = stats(p)
        print(f"{name:24} {cl:7.2f} {cm:7.2f} {ch:7.2f} s   {pl:6.2f} {pm:6.2f} {ph:6.2f} s {cm / pm:6.2f}x")
    print()
    print(f"{'step (redeploy median)':24} {'conductor':>12} {'plain':>12}")
    for s in STEPS:
        c, p = c_med.get(s), p_med.get(s)
        print(f"{s:24} {(f'{c:.0f} ms' if c is not None else '-'):>12} {(f'{p:.0f} ms' if p is not None else '-'):>12}")
    if c_out is not None and p_out is not None:
        print(f"{'outside the steps':24} {c_out:9.0f} ms {p_out:9.0f} ms")
    print()
    print(f"target (<{TARGET_S:.0f} s and <= {TARGET_RATIO}x plain): {'met' if met_abs and met_ratio else 'NOT met'}")

    if a.doc == "-":
        return
    block = BEGIN + "\n" + generated + "\n" + END
    try:
        with open(a.doc, encoding="utf-8") as f:
            doc = f.read()
    except FileNotFoundError:
        doc = ""
    if BEGIN in doc and END in doc:
        pre, rest = doc.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        doc = pre + block + post
    else:
        doc = ("# Benchmarks\n\n## Deploy time: `git push` → new release answering\n\n" + block + "\n" + doc)
    os.makedirs(os.path.dirname(a.doc) or ".", exist_ok=True)
    with open(a.doc, "w", encoding="utf-8") as f:
        f.write(doc)
    print(f"wrote {a.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
