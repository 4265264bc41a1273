#!/usr/bin/env python3
"""tables.py - turn the outputs of one tools/bench run into markdown tables
and write them into doc/BENCHMARKS.md between marker comments.

    python3 bench/tables.py OUTDIR BENCHMARKS.md WRITE

OUTDIR holds run.meta, durations, commands and NAME.out / NAME.err for each
benchmark that ran. Every block is regenerated only for the benchmarks of
this run; the text between <!-- bench:NAME begin --> and
<!-- bench:NAME end --> is replaced, everything else is kept. A missing
pair of markers is appended at the end of the file. With WRITE = 0 the
tables are only printed. The tables always go to stdout.
"""
import os
import re
import sys

NUM = r"([0-9][0-9.]*|n/a|inf)"


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def ratio(a, b):
    """a / b: two decimals; none from 100 up; two significant digits below 0.01"""
    a, b = num(a), num(b)
    if a is None or not b:
        return "n/a"
    r = a / b
    if r >= 100:
        return "{:,.0f}".format(r)
    if r and r < 0.01:
        return "%.2g" % r
    return "%.2f" % r


def verdict(value, op, limit):
    v = num(value)
    if v is None:
        return "not measured"
    good = v >= limit if op == ">=" else v <= limit if op == "<=" else v < limit
    return "**met**" if good else "**not met**"


def fmt(v, digits=1):
    x = num(v)
    if x is None:
        return "n/a"
    return "{:,.{}f}".format(x, digits)


def failed_note(out, name):
    err = read(os.path.join(out, name + ".err")).strip().splitlines()[-3:]
    return ("Not measured in this run (the benchmark produced no result). "
            "Last lines of its stderr:\n\n```\n" + "\n".join(err) + "\n```\n")


def authd_table(out):
    text = read(os.path.join(out, "authd.out"))
    rows = [
        ("cached AUTH PLAIN/s, 1 connection", r"cached AUTH PLAIN, 1 connection", "≥ 20,000/s", ">=", 20000, True),
        ("cached AUTH PLAIN/s, 50 connections", r"cached AUTH PLAIN, 50 connections", "≥ 20,000/s", ">=", 20000, True),
        ("cached p99 latency, 50 connections (ms)", r"cached p99 latency, 50 conns", "", None, None, False),
        ("cached p99 while 40 bcrypts queued (ms)", r"cached p99 while 40 bcrypts queued", "< 5 ms", "<", 5, False),
        ("uncached verifications/s", r"uncached verifications", "", None, None, True),
    ]
    lines = ["| measure | postroom-authd | Dovecot auth (baseline) | ratio authd/Dovecot | target |",
             "|---|---|---|---|---|"]
    found = False
    for label, pat, target, op, limit, higher in rows:
        m = re.search(pat + r"[^\n]*?\)\s+" + NUM + r"\s+" + NUM, text)
        if not m:
            continue
        found = True
        a, d = m.group(1), m.group(2)
        t = "%s: %s" % (target, verdict(a, op, limit)) if op else ""
        lines.append("| %s | %s | %s | **%s×** | %s |" % (label, fmt(a, 2 if not higher else 1), fmt(d, 2 if not higher else 1),
                                                         ratio(a, d), t))
    m = re.search(r"uncached / single-core bcrypt\s+" + NUM, text)
    if m:
        lines.append("| uncached / one bcrypt loop on one core (same run) | %s× | | | ≥ 1.8×: %s |"
                     % (m.group(1), verdict(m.group(1), ">=", 1.8)))
    m = re.search(r"one bcrypt loop per core, summed:\s+" + NUM + r" /s\s+\(" + NUM, text)
    if m:
        lines.append("| (the machine: one bcrypt loop per core / one loop) | %s× | | | ceiling |" % m.group(2))
    return "\n".join(lines) + "\n" if found else failed_note(out, "authd")


def policyd_table(out):
    text = read(os.path.join(out, "policyd.out"))
    lines = ["| style | connections | requests | rate | ratio to the target (20,000/s) | p50 | p99 | errors |",
             "|---|---|---|---|---|---|---|---|"]
    rx = re.compile(r"^(\S+)\s+conns=(\d+)\s+requests=(\d+)\s+([0-9.]+) req/s\s+p50=([0-9.]+) ms\s+p99=([0-9.]+) ms.*errors=(\d+)", re.M)
    rows = rx.findall(text)
    for style, c, n, rate, p50, p99, errors in rows:
        target = ratio(rate, 20000) + "×" if style == "persistent" else "(Exim style: no target)"
        lines.append("| %s | %s | %s | %s/s | %s | %s ms | %s ms | %s |"
                     % (style, c, "{:,}".format(int(n)), fmt(rate, 0), target, p50, p99, errors))
    note = ("\npolicyd has no peer to run beside it (nothing else answers Postfix's policy "
            "protocol with these rules); its rates are given against the issue's absolute target.\n")
    return "\n".join(lines) + "\n" + note if rows else failed_note(out, "policyd")


def milter_rows(out, name, label):
    """one row per milter variant of bench/milter-bench's output (the old
    format "with X msg/s, ratio R" and the newer "with A X msg/s, ratio A R"
    with an optional second milter B)"""
    text = read(os.path.join(out, name + ".out"))
    m = re.search(r"best: without ([0-9.]+) msg/s, with (?:A )?([0-9.]+) msg/s, ratio (?:A )?([0-9.]+)", text)
    if not m:
        return []
    base = m.group(1)
    variants = [("", m.group(2))]
    b = re.search(r"best: with B ([0-9.]+) msg/s", text)
    if b:
        variants = [("A", m.group(2)), ("B", b.group(1))]
    p = re.search(r"p50 ([0-9.]+) ms, p99 ([0-9.]+) ms", text)
    rows = []
    for tag, rate in variants:
        cpu = re.search(r"milter %sCPU: (\d+) ms for (\d+) messages" % (tag + " " if tag else "(?:A )?"), text)
        per = "%.2f ms" % (int(cpu.group(1)) / int(cpu.group(2))) if cpu and int(cpu.group(2)) else "n/a"
        r = ratio(rate, base)
        rows.append("| %s%s | %s msg/s | %s msg/s | **%s×** | ≥ 0.9×: %s | %s | %s ms (< 1 ms: %s) |"
                    % (label, " (milter %s)" % tag if tag else "", fmt(base), fmt(rate), r, verdict(r, ">=", 0.9), per,
                       p.group(2) if p else "n/a", verdict(p.group(2) if p else None, "<", 1.0)))
    # issue 23: against the null milter (bench/null-milter.c) of the same run
    n = re.search(r"best: with null ([0-9.]+) msg/s", text)
    c = re.search(r"postroom-milter / null milter: best rounds [0-9.]+, CPU ([0-9.]+)", text)
    if n and variants:
        r = ratio(variants[0][1], n.group(1))
        rows.append("| %s, against the null milter | null milter %s msg/s | %s msg/s | **%s×** | ≥ 0.95×: %s | CPU ratio %s | |"
                    % (label, fmt(n.group(1)), fmt(variants[0][1]), r, verdict(r, ">=", 0.95), c.group(1) if c else "n/a"))
    return rows


def milter_table(out):
    lines = ["| connections | Postfix without milter (baseline, best round) | with postroom-milter | ratio | target | milter CPU / message | RCPT decision p99 |",
             "|---|---|---|---|---|---|---|"]
    rows = milter_rows(out, "milter", "one per message") + milter_rows(out, "milter-persist", "persistent (`-d`)")
    return "\n".join(lines + rows) + "\n" if rows else failed_note(out, "milter")


def deliver_table(out):
    text = read(os.path.join(out, "deliver.out"))
    pr = re.search(r"postroom-deliver:\s+([0-9.]+)s, ([0-9.]+) msg/s, (\d+) failures", text)
    lda = re.search(r"dovecot-lda:\s+([0-9.]+)s, ([0-9.]+) msg/s, (\d+) failures", text)
    head = re.search(r"== (\d+) messages", text)
    if not (pr and lda):
        return failed_note(out, "deliver")
    n = head.group(1) if head else "?"
    r = ratio(pr.group(2), lda.group(2))
    lines = ["| measure | postroom-deliver | dovecot-lda (baseline) | ratio | target |", "|---|---|---|---|---|",
             "| %s messages, one process each (msg/s) | %s | %s | **%s×** | ≥ 1.0×: %s |"
             % (n, pr.group(2), lda.group(2), r, verdict(r, ">=", 1.0))]
    cl = re.search(r"postroom-deliver client mode \(via postroom-lmtpd\): ([0-9.]+)s, ([0-9.]+) msg/s, (\d+) failures", text)
    if cl:
        r = ratio(cl.group(2), lda.group(2))
        lines.append("| the same, client mode (`deliver.lmtpd_socket`, via postroom-lmtpd) (msg/s) | %s | %s | **%s×** | ≥ 1.0×: %s |"
                     % (cl.group(2), lda.group(2), r, verdict(r, ">=", 1.0)))
    rp = re.search(r"peak RSS postroom-deliver:\s+(\d+) KiB = ([0-9.]+) x", text)
    rl = re.search(r"peak RSS dovecot-lda:\s+(\d+) KiB = ([0-9.]+) x", text)
    if rp and rl:
        lines.append("| peak RSS, 45 MiB message, 24 MiB attachment | %s KiB = %s× the message | %s KiB = %s× | %s× | ≤ 2× the message: %s |"
                     % ("{:,}".format(int(rp.group(1))), fmt(rp.group(2), 2), "{:,}".format(int(rl.group(1))), fmt(rl.group(2), 2),
                        ratio(rp.group(1), rl.group(1)), verdict(rp.group(2), "<=", 2.0)))
    return "\n".join(lines) + "\n"


def copied_table(out, name):
    text = read(os.path.join(out, name + ".out"))
    parts = text.split("-- table --\n")
    if len(parts) < 3:
        return failed_note(out, name)
    extra = [l.strip() for l in text.splitlines()
             if l.strip().startswith(("failures:", "big message:", "# Postfix log:", "lmtpd's mean", "# checks:", "# CPU a message"))]
    return parts[1] + ("\n" + "\n".join("- " + l.lstrip("# ") for l in extra) + "\n" if extra else "")


def run_block(out):
    meta = dict(l.split(" ", 1) for l in read(os.path.join(out, "run.meta")).splitlines() if " " in l)
    durations = [l.split() for l in read(os.path.join(out, "durations")).splitlines() if l.strip()]
    cmds = read(os.path.join(out, "commands")).strip().splitlines()
    lines = ["Last `tools/bench` run: **%s**, %s, %s RAM, %s; %s."
             % (meta.get("date", "?"), meta.get("cpu", "?"), meta.get("mem", "?"), meta.get("os", "?"), meta.get("versions", "?")),
             "", "Command (from the top of the tree, as root, after a build): `POSTROOM_BUILDDIR=$PWD/build tools/bench"
             + ("" if meta.get("names", "").split() == "authd policyd milter deliver lmtp e2e".split()
                else " " + meta.get("names", "")) + "`",
             "", "What else was running: `uptime` before and after the run (other engineers' builds and",
             "test suites share these 2 vCPUs; only ratios within one run mean much):", "", "```",
             "before: " + meta.get("uptime_before", "?").strip(), "after:  " + meta.get("uptime_after", "?").strip(), "```", "",
             "| benchmark | command | seconds | exit |", "|---|---|---|---|"]
    for d, c in zip(durations, cmds):
        lines.append("| %s | `%s` | %s | %s |" % (d[0], c.split(": ", 1)[-1], d[1], d[2]))
    lines.append("| **total** | | **%s** | (limit 900) |" % meta.get("total_seconds", "?"))
    return "\n".join(lines) + "\n"


def stamp(out, body):
    meta = dict(l.split(" ", 1) for l in read(os.path.join(out, "run.meta")).splitlines() if " " in l)
    return "_Generated by `tools/bench`, %s (see \"Last run\" for the machine and its load)._\n\n%s" % (
        meta.get("date", "?"), body)


def replace_block(doc, name, body):
    begin, end = "<!-- bench:%s begin -->" % name, "<!-- bench:%s end -->" % name
    new = "%s\n%s%s" % (begin, body if body.endswith("\n") else body + "\n", end)
    i, j = doc.find(begin), doc.find(end)
    if i >= 0 and j > i:
        return doc[:i] + new + doc[j + len(end):]
    return doc.rstrip("\n") + "\n\n## %s (generated)\n\n%s\n" % (name, new)


def main():
    out, path, write = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    ran = [l.split()[0] for l in read(os.path.join(out, "durations")).splitlines() if l.strip()]
    blocks = {"run": run_block(out)}
    makers = {"authd": authd_table, "policyd": policyd_table, "milter": milter_table,
              "deliver": deliver_table, "lmtp": lambda o: copied_table(o, "lmtp"),
              "e2e": lambda o: copied_table(o, "e2e"),
              "memory": lambda o: copied_table(o, "memory"),
              "purge": lambda o: copied_table(o, "purge"),
              "events": lambda o: copied_table(o, "events"),
              "storage": lambda o: copied_table(o, "storage"),
              "floor": lambda o: copied_table(o, "floor"),
              "s3": lambda o: copied_table(o, "s3"),
              "ceiling": lambda o: copied_table(o, "ceiling"),
              "gin": lambda o: copied_table(o, "gin")}
    for name, make in makers.items():
        if name in ran:
            blocks[name] = stamp(out, make(out))
    for name, body in blocks.items():
        print("### %s\n\n%s" % (name, body))
    if write:
        doc = read(path)
        for name, body in blocks.items():
            doc = replace_block(doc, name, body)
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc)
        print("rewrote the tables of %s: %s" % (path, ", ".join(blocks)))


if __name__ == "__main__":
    main()
