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


HEADER_RE = re.compile(r"^(\d+\.\d+) remote: -----> (.*?)\s*$")
PUSH_LOG_RE = re.compile(r"^push-(\w+)-(\d+)\.log$")


def push_timeline(path):
    """(t0, [(t, header)], t_last_line) from a push log whose lines bench/deploy.sh
    prefixed with the time they arrived ("EPOCH line"); the first line is "EPOCH START"."""
    t0, heads, last = None, [], None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            ts_s, _, rest = line.rstrip("\n").partition(" ")
            try:
                t = float(ts_s)
            except ValueError:
                continue
            if rest == "START":
                t0 = t
                continue
            last = t
            m = HEADER_RE.match(line.rstrip("\n"))
            if m:
                heads.append((t, m.group(2)))
    return t0, heads, last


def label(header):
    """A step header without the per-deploy parts (app, revision, release id)."""
    for prefix in ("Deploying ", "Deployed ", "Creating app "):
        if header.startswith(prefix):
            return prefix.strip()
    return header


def segments(t0, heads, returned):
    """[(segment name, ms)]: from the push's start to the first line, then each
    header to the next, the last header to the push's end."""
    out, prev_t, prev_name = [], t0, "ssh, receive-pack and the hook, to the first line"
    for t, h in heads:
        out.append((prev_name, (t - prev_t) * 1000))
        prev_t, prev_name = t, label(h)
    out.append((prev_name + " → push returned", (returned - prev_t) * 1000))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--push-logs", required=True, help="dir of bench/deploy.sh's timestamped push logs")
    ap.add_argument("--serve-log", required=True)
    ap.add_argument("--serve-mark", type=int, default=0)
    ap.add_argument("--plain-steps", required=True)
    ap.add_argument("--plain-mark", type=int, default=0)
    ap.add_argument("--binary", default="unknown", help="output of `conductor version`")
    ap.add_argument("--doc", default="docs/benchmarks.md")
    a = ap.parse_args()

    runs = []  # (tool, kind, run, total s, returned s, release id, t0)
    with open(a.results) as f:
        for line in f:
            tool, kind, run, t0, t1, t2, rel = line.rstrip("\n").split("\t")
            runs.append((tool, kind, int(run), float(t2) - float(t0), float(t1) - float(t0), rel, float(t0)))

    def totals(tool, kind, col=3):
        return [r[col] for r in runs if r[0] == tool and r[1] == kind]

    kinds = [k for k in ("first", "redeploy", "warm") if totals("conductor", k) and totals("plain", k)]
    n = {k: len(totals("conductor", k)) for k in kinds}

    # Per-step times as each tool logs them: Conductor's `step done`, the plain script's timer.
    cb, ca = conductor_steps(a.serve_log, a.serve_mark)
    pb, pa = plain_steps(a.plain_steps, a.plain_mark)
    c_steps, p_steps = {**cb, **ca}, {**pb, **pa}

    def ids(tool, kind):
        return [r[5] for r in runs if r[0] == tool and r[1] == kind]

    def step_medians(by_release, rels):
        names = []
        for r in rels:
            for s in by_release.get(r, {}):
                if s not in names:
                    names.append(s)
        out = {}
        for s in names:
            xs = [by_release[r][s] for r in rels if s in by_release.get(r, {})]
            out[s] = statistics.median(xs)
        return out

    # Conductor's per-step times from the `remote:` lines' arrival times.
    timelines = {}
    for name in os.listdir(a.push_logs):
        m = PUSH_LOG_RE.match(name)
        if m:
            timelines[(m.group(1), int(m.group(2)))] = push_timeline(os.path.join(a.push_logs, name))

    def remote_segments(kind):
        order, per = [], {}
        for r in runs:
            if r[0] != "conductor" or r[1] != kind or (kind, r[2]) not in timelines:
                continue
            t0, heads, _ = timelines[(kind, r[2])]
            if t0 is None or not heads:
                continue
            for seg, ms in segments(t0, heads, t0 + r[4]):
                if seg not in per:
                    order.append(seg)
                per.setdefault(seg, []).append(ms)
        return [(s, statistics.median(per[s]), len(per[s])) for s in order]

    first_line = []  # ms from the push's start to "-----> Deploying …"
    for (kind, run), (t0, heads, _) in timelines.items():
        for t, h in heads:
            if h.startswith("Deploying "):
                first_line.append((t - t0) * 1000)
                break

    m, v = machine(), tool_versions()
    commit = git("rev-parse", "--short", "HEAD")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def mmm(xs):
        lo, md, hi = stats(xs)
        return f"{lo:.2f} / **{md:.2f}** / {hi:.2f} s" if len(xs) > 1 else f"**{md:.2f} s**"

    def ratio(kind):
        return statistics.median(totals("conductor", kind)) / statistics.median(totals("plain", kind))

    what = {
        "first": "First deploy: a new app, its own cache empty, packages from the index (from the 2nd on, the host's seed has their compiled modules)",
        "redeploy": "Code-only redeploy",
        "warm": "Dependency change: a new virtualenv from the tool's warm local cache",
    }

    L = []
    L.append(f"- **Date:** {date}")
    dirty = " — built from a work tree with uncommitted changes" if a.binary.endswith("-dirty") else ""
    L.append(f"- **Commit:** `{commit}` (HEAD at run time); the binary says `{a.binary}` "
             f"(`conductor version`, i.e. `git describe --always --dirty` when it was built){dirty}")
    L.append(f"- **Machine:** {m['cpu']}, {m['ram']} RAM, {m['os']}")
    L.append(f"- **Software:** {v['python']} (app virtualenvs), {v['nginx']}, {v['git']}")
    L.append(f"- **Load average after the run:** {m['load']} (other jobs share this machine: compare the two tools within one run)")
    L.append("- **Reproduce:** `make bench` (setup + build, then `bench/deploy.sh`), or `bench/deploy.sh` after "
             f"`make build`; as root. This run: `BENCH_N={n.get('redeploy', 0)} BENCH_COLD={n.get('first', 0)} BENCH_WARM={n.get('warm', 0)}`.")
    L.append("")
    L.append("The app is `examples/hello` with a worker added: Procfile `web: gunicorn hello.wsgi` and "
             "`worker: python worker.py` (it runs `django.setup()` and then beats once a second, like a Celery or RQ "
             "worker without a broker). Wall time from the start of `git push` (Conductor) or of "
             "`bench/plain-deploy.sh deploy` (the same steps by hand: git archive, settings, migrate, collectstatic, "
             "start the new gunicorn, check it, switch nginx, restart the worker) until `GET /` through that tool's "
             "front nginx shows the new version. The runs of the two tools alternate.")
    L.append("")
    L.append("| Case | Runs each | Conductor min / median / max | By hand min / median / max | Ratio of medians (Conductor / by hand) |")
    L.append("|---|---:|---|---|---|")
    for k in kinds:
        L.append(f"| {what[k]} | {n[k]} | {mmm(totals('conductor', k))} | {mmm(totals('plain', k))} | **{ratio(k):.2f}×** |")
    L.append("")
    piku = totals("piku", "first")
    if piku and "first" in kinds:
        c_first = totals("conductor", "first")
        L.append(f"**piku beside it** (`BENCH_PIKU`, docs/benchmarks.md \"piku beside it\"): a first deploy of the same "
                 f"app to piku in each round, from the start of its `git push` until it answered through piku's nginx: "
                 f"{mmm(piku)}; Conductor / piku = **{statistics.median(c_first) / statistics.median(piku):.2f}×** "
                 f"(every run, in order: Conductor " + ", ".join(f"{x:.2f}" for x in c_first)
                 + "; piku " + ", ".join(f"{x:.2f}" for x in piku) + " s).")
        L.append("")
    if "redeploy" in kinds:
        c_redo, p_redo = totals("conductor", "redeploy"), totals("plain", "redeploy")
        L.append("Every code-only redeploy, in order (s): Conductor " + ", ".join(f"{x:.2f}" for x in c_redo)
                 + "; by hand " + ", ".join(f"{x:.2f}" for x in p_redo) + ".")
        c_ret, p_ret = totals("conductor", "redeploy", 4), totals("plain", "redeploy", 4)
        L.append("")
        L.append(f"`git push` returned after a median {statistics.median(c_ret):.2f} s (it returns once nginx serves "
                 f"the new release and the other processes are handled); the by-hand script after {statistics.median(p_ret):.2f} s.")
        L.append("")
    if first_line:
        lo, md, hi = stats(first_line)
        L.append(f"**First useful output** (`-----> Deploying …` on the pusher's terminal, from the start of `git push`, "
                 f"all {len(first_line)} pushes): min {lo:.0f} / median **{md:.0f}** / max {hi:.0f} ms.")
        L.append("")

    for k in kinds:
        segs = remote_segments(k)
        if not segs:
            continue
        L.append(f"### Conductor, where a {'code-only redeploy' if k == 'redeploy' else ('first deploy' if k == 'first' else 'dependency change')} goes "
                 f"(median of {n[k]}, from the `remote:` lines' arrival)")
        L.append("")
        L.append("Each row runs from one `-----> …` line to the next as the pusher's terminal got them.")
        L.append("")
        L.append("| From the line | Median |")
        L.append("|---|---:|")
        for seg, md, cnt in segs:
            L.append(f"| {seg} | {fmt_ms(md)} |")
        L.append("")
        cm = step_medians(c_steps, ids("conductor", k))
        pm = step_medians(p_steps, ids("plain", k))
        if cm or pm:
            L.append(f"Per step as each tool logs it (Conductor: `step done … took=` in `conductor serve --log-level debug`; "
                     f"by hand: the script's own timer), median of {n[k]}:")
            L.append("")
            L.append("| Step | Conductor | By hand |")
            L.append("|---|---:|---:|")
            for s in list(cm) + [s for s in pm if s not in cm]:
                c, p = cm.get(s), pm.get(s)
                L.append(f"| {s} | {fmt_ms(c) if c is not None else '—'} | {fmt_ms(p) if p is not None else '—'} |")
            L.append("")
    generated = "\n".join(L).rstrip("\n")

    # Terminal summary.
    print()
    print(f"{'':12} {'conductor (min/med/max)':>26} {'by hand (min/med/max)':>24} {'ratio':>7}")
    for k in kinds:
        c, p = totals("conductor", k), totals("plain", k)
        cl, cm_, ch = stats(c)
        pl, pm_, ph = stats(p)
        print(f"{k:12} {cl:7.2f} {cm_:7.2f} {ch:7.2f} s   {pl:6.2f} {pm_:6.2f} {ph:6.2f} s {cm_ / pm_:6.2f}x")
    if first_line:
        print(f"first useful line: median {statistics.median(first_line):.0f} ms, max {max(first_line):.0f} ms")
    for seg, md, _ in remote_segments("redeploy"):
        print(f"  {seg[:60]:60} {md:8.0f} ms")

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
