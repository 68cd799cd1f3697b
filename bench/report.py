#!/usr/bin/env python3
"""Turns bench/run's raw measurements (JSON lines) into bench/RESULTS.md on stdout.

usage: report.py RESULTS.jsonl META.env WORKDIR
"""
import json
import os
import re
import shlex
import statistics
import sys
from collections import defaultdict

res_path, meta_path, work = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(res_path) if l.strip()]
meta = {}
for line in open(meta_path):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        meta[k] = " ".join(shlex.split(v)) if v else ""

out = []
w = out.append


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, p):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def f(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}"


def label(tool, variant):
    names = {
        ("ferry", "default"): "ferry worker (defaults: adaptive in-flight limit, ceiling 256)",
        ("ferry", "c16"): "ferry worker, 16 in flight (copy.min_in_flight = max_in_flight = 16)",
        ("ferry", "multipart"): f"ferry worker, UploadPartCopy {meta.get('LARGE_MP_MB', '?')} MiB parts",
        ("rclone", "default"): "rclone copy (defaults: 4 transfers, 8 checkers)",
        ("rclone", "c16"): "rclone copy --transfers 16 --checkers 16",
        ("aws", "default"): "aws s3 cp --recursive (defaults: 10 requests)",
        ("aws", "c16"): "aws s3 cp --recursive, max_concurrent_requests 16",
        ("aws", "single"): "aws s3 cp --recursive, multipart_threshold 5GB (CopyObject)",
        ("s5cmd", "default"): "s5cmd cp (defaults: 256 workers)",
        ("s5cmd", "c16"): "s5cmd --numworkers 16 cp",
        ("rclone", "c16"): "rclone copy --transfers 16 --checkers 16",
        ("rclonex", "default"): "rclone copy between two remotes (defaults: 4 transfers, 8 checkers)",
        ("rclonex", "c16"): "rclone copy between two remotes, --transfers 16 --checkers 16",
    }
    if (tool, variant) in (("ferry", "default"), ("ferry", "c16")) and cross_label:
        return names[(tool, variant)] + ", s3.target.endpoint set (streamed)"
    if tool == "ferry" and variant == "default" and meta.get("LARGE_MP_MB"):
        pass
    return names.get((tool, variant), f"{tool} {variant}")


def group(section, workload=None):
    g = defaultdict(list)
    for r in rows:
        if r.get("section") == section and (workload is None or r.get("workload") == workload) and "tool" in r:
            g[(r["tool"], r["variant"])].append(r)
    return g


def summarize(rs):
    ok = [r for r in rs if r.get("ok") == 1]
    use = ok or rs
    n = use[0]["objects"]
    b = use[0]["bytes"]
    wall = med([r["wall_s"] for r in use])
    cpu = med([r["cpu_s"] for r in use])
    s = {
        "runs": len(rs), "ok": len(ok), "objects": n, "bytes": b,
        "wall": wall, "wall_min": min(r["wall_s"] for r in use), "wall_max": max(r["wall_s"] for r in use),
        "ops": n / wall if wall else None, "mbs": b / 1e6 / wall if wall else None,
        "cpu": cpu, "us_obj": cpu / n * 1e6 if n else None,
        "rss": med([r["rss_kb"] for r in use]) / 1024,
        "srv": med([r["server_cpu_s"] for r in use]),
        "stack": med([r.get("stack_cpu_s", 0) for r in use]),
        "srv_pct": med([r["server_cpu_s"] / r["wall_s"] * 100 for r in use if r["wall_s"]]),
        "other": med([max(0.0, r["busy_cpu_s"] - r["cpu_s"] - r["server_cpu_s"] - r["stack_cpu_s"]) / r["wall_s"]
                      for r in use if r["wall_s"]]),
    }
    for k in ("startup_cpu_s", "exit_cpu_s", "exit_rss_kb", "publish_to_start_ms", "publish_cmd_ms",
              "validate_count_ms", "copy_ms", "redis_cmds"):
        vals = [r[k] for r in use if k in r]
        s[k] = med(vals) if vals else None
    return s


ORDER = ["ferry/multipart", "ferry/default", "s5cmd/default", "rclone/default", "rclonex/default", "aws/default",
         "aws/single", "ferry/c16", "s5cmd/c16", "rclone/c16", "rclonex/c16", "aws/c16"]
cross_label = False  # set while the cross-endpoint tables are written


def ordered(g):
    keys = sorted(g, key=lambda k: ORDER.index(f"{k[0]}/{k[1]}") if f"{k[0]}/{k[1]}" in ORDER else 99)
    return keys


def copy_table(section, wl, title):
    g = group(section, wl)
    if not g:
        return {}
    sums = {k: summarize(v) for k, v in g.items()}
    ferries = [k for k in ordered(sums) if k[0] == "ferry"]
    any_s = next(iter(sums.values()))
    w(f"### {title}\n")
    w(f"{any_s['objects']:,} objects, {any_s['bytes'] / 1e6:,.1f} MB; medians of {max(s['runs'] for s in sums.values())} run(s).\n")
    hdr = ["tool and settings", "ok runs", "wall s (min–max)", "objects/s", "MB/s", "client CPU s",
           "CPU µs/object", "peak RSS MiB", "S3Proxy CPU s (% of a core)", "Kafka + Redis CPU s",
           "others' load (cores)"]
    for fk in ferries:
        tag = "ferry" if len(ferries) == 1 else f"ferry {fk[1]}"
        hdr += [f"{tag} speed ÷ tool", f"{tag} CPU ÷ tool"]
    w("| " + " | ".join(hdr) + " |")
    w("|" + "---|" * len(hdr))
    for k in ordered(sums):
        s = sums[k]
        cells = [label(*k) + (" — **failed** (see notes)" if s["ok"] == 0 else ""), f"{s['ok']}/{s['runs']}", f"{f(s['wall'])} ({f(s['wall_min'])}–{f(s['wall_max'])})",
                 f(s["ops"], 0), f(s["mbs"], 1), f(s["cpu"]), f(s["us_obj"], 0), f(s["rss"], 1),
                 f"{f(s['srv'], 1)} ({f(s['srv_pct'], 0)}%)", f(s["stack"], 2), f(s["other"], 2)]
        for fk in ferries:
            fs = sums[fk]
            if k == fk:
                cells += ["1", "1"]
            else:
                cells += [f(s["wall"] / fs["wall"], 2) if fs["wall"] else "–",
                          f(fs["cpu"] / s["cpu"], 2) if s["cpu"] else "–"]
        w("| " + " | ".join(cells) + " |")
    w("")
    return sums


def ferry_phase_table(groups):
    w("| run set | publish command ms | publish → migration start ms | validate + count ms | copy ms | engine objects/s (migrating → migrated) | worker CPU at start s | CPU at done s | CPU at exit s | RSS at done MiB | Redis commands |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in groups:
        eng = (s['validate_count_ms'] or 0) + (s['copy_ms'] or 0)
        w(f"| {name} | {f(s['publish_cmd_ms'], 0)} | {f(s['publish_to_start_ms'], 0)} | {f(s['validate_count_ms'], 0)} | "
          f"{f(s['copy_ms'], 0)} | {f(s['objects'] / eng * 1000 if eng else None, 0)} | {f(s['startup_cpu_s'])} | {f(s['cpu'])} | {f(s['exit_cpu_s'])} | {f(s['rss'], 1)} | "
          f"{f(s['redis_cmds'], 0)} |")
    w("")


# ---------------------------------------------------------------------------------------
w("# ferry benchmark results\n")
w(f"Written by `bench/run{' --quick' if meta.get('QUICK') == '1' else ''}` on {meta.get('DATE')} "
  f"(source: {meta.get('SNAPSHOT')}); the whole run took {int(meta.get('TOTAL_SECS', 0)) // 60} min "
  f"{int(meta.get('TOTAL_SECS', 0)) % 60} s. How to read every number: [README.md](README.md).\n")
if meta.get("QUICK") == "1":
    w("**Quick (smoke) run: 1 run per figure and small workloads — not for quoting.**\n")
w("## Machine and versions\n")
w("| | |\n|---|---|")
for k, name in [("NPROC", "CPUs (nproc)"), ("CPU_MODEL", "CPU"), ("MEM", "memory"), ("OS", "OS"),
                ("KERNEL", "kernel"), ("V_FERRY", "ferry"), ("V_RCLONE", "rclone"), ("V_AWS", "aws-cli"),
                ("V_S5CMD", "s5cmd"), ("V_S3PROXY", "S3 server"), ("V_KAFKA", "Kafka"), ("V_REDIS", "Redis"),
                ("V_CURL", "curl / TLS lib"), ("V_JAVA", "Java"), ("V_PERF", "perf"),
                ("LOADAVG_START", "load average at start"), ("LOADAVG_END", "load average at end"),
                ("OTHER_STACKS", "other services on the machine")]:
    if meta.get(k):
        w(f"| {name} | {meta[k]} |")
w("")
w("Everything runs on this one machine over loopback: the S3 server (S3Proxy, a JVM), Kafka, Redis and "
  "the client being measured share the CPUs, so **client CPU per object** is the figure that carries over "
  "to real S3; wall time mostly measures S3Proxy. \"Others' load\" is CPU used during the run by "
  "processes that are neither the client, S3Proxy, nor this stack's Kafka/Redis (e.g. other test stacks "
  "on a shared machine), in cores; above ~0.3 the wall times of that row are disturbed.\n")

loads = []
for r in rows:
    if "busy_cpu_s" in r and r.get("wall_s") and "cpu_s" in r:
        loads.append(max(0.0, r["busy_cpu_s"] - r["cpu_s"] - r["server_cpu_s"] - r["stack_cpu_s"]) / r["wall_s"])
if loads and statistics.median(loads) > 0.3:
    w(f"**Warning: this machine was busy with other work during the run** — median {statistics.median(loads):.2f} "
      f"of its {meta.get('NPROC', '?')} cores went to processes outside the benchmark (load average "
      f"{meta.get('LOADAVG_START', '?')} at the start, {meta.get('LOADAVG_END', '?')} at the end; the stack, "
      f"clients and workers ran at nice {meta.get('NICE', '0')}). Wall times and objects/s are therefore slower "
      "and noisier than on an idle machine (see the min–max ranges); compare tools within a table rather "
      "than with other runs. CPU per object is much less affected.\n")

idle = [(k[len("IDLE_BUSY_"):], v) for k, v in meta.items() if k.startswith("IDLE_BUSY_")]
if idle:
    w("Idle check before each section (3 s, nothing of the benchmark running; `bench/run` refuses to "
      f"write RESULTS.md above {meta.get('IDLE_MAX', '0.15')} of all cores): " +
      "; ".join(f"{sec} {float(v) * 100:.0f}% busy" for sec, v in idle) + ".\n")

seeds = [r for r in rows if r.get("section") == "seed"]
if seeds:
    w("Seeding (ferry-s3tool, 64 PUTs in flight; large objects with s5cmd multipart uploads): " +
      "; ".join(f"{r['workload']} {r['objects']:,} objects in {r['wall_s']} s" for r in seeds) + ".\n")

# --- copy --------------------------------------------------------------------------------
copy_sums = {}
if any(r.get("section") == "copy" for r in rows):
    w("## 1. Copy engine: server-side copy on one S3Proxy\n")
    w("Every tool copies the same source prefix to a fresh target prefix in another bucket on the same "
      "S3Proxy, server-side (CopyObject; UploadPartCopy where noted); the target is counted after each run "
      "(\"ok runs\": every object there with the right total size). ferry's wall time runs from "
      "`ferry-producer publish` to the worker's \"migrated\" log line, so it includes publishing the event, "
      "Kafka delivery, validation, counting the source and the Redis checkpoints; a fresh worker process "
      "per run, its CPU counted from process start (startup cost in section 1.4). "
      "\"speed ÷ tool\" > 1: ferry is faster; \"CPU ÷ tool\" < 1: ferry uses less CPU.\n")
    lsize = int(meta.get("LARGE_SIZE", 0)) >> 20
    copy_sums["small"] = copy_table("copy", "small", f"1.1 Small objects: {int(meta.get('SMALL_N', 0)):,} × 4 KiB")
    copy_sums["medium"] = copy_table("copy", "medium", f"1.2 Medium objects: {int(meta.get('MED_N', 0)):,} × 1 MiB")
    copy_sums["large"] = copy_table("copy", "large", f"1.3 Large objects: {int(meta.get('LARGE_N', 0))} × {lsize} MiB")
    w(f"Large objects: the sources were uploaded with multipart (so their ETags are multipart ETags and "
      f"ferry verifies copies by size with a HEAD). ferry default = one CopyObject per object "
      f"(`copy.multipart_threshold_mb` 5120); the multipart row forces UploadPartCopy with "
      f"`-X copy.multipart_threshold_mb={meta.get('LARGE_MP_MB')} -X copy.multipart_part_size_mb={meta.get('LARGE_MP_MB')}`. "
      "aws-cli at its defaults copies anything above 8 MB with 8 MB UploadPartCopy parts and, for "
      "multipart copies, first calls GetObjectTagging, which S3Proxy does not implement (501): "
      "it fails here, so it also runs with `multipart_threshold = 5GB` (one CopyObject per object). "
      "rclone (copy cutoff 4.656 GiB) and s5cmd use one CopyObject. S3Proxy's filesystem backend "
      "completes a multipart upload by concatenating the parts into a new file, i.e. it writes every "
      "byte twice.\n")

    w("### 1.4 The S3 server's ceiling\n")
    w("The fastest any client achieved per workload (median wall), and ferry against it.\n")
    w("| workload | fastest client | objects/s | MB/s | S3Proxy CPU during it | ferry variant | ferry objects/s | ferry ÷ ceiling |")
    w("|---|---|---|---|---|---|---|---|")
    for wl, sums in copy_sums.items():
        if not sums:
            continue
        best = min((k for k in sums if sums[k]["ok"] > 0), key=lambda k: sums[k]["wall"])
        bs = sums[best]
        for fk in [k for k in ordered(sums) if k[0] == "ferry"]:
            fs = sums[fk]
            w(f"| {wl} | {label(*best)} | {f(bs['ops'], 0)} | {f(bs['mbs'], 1)} | {f(bs['srv_pct'], 0)}% of a core | "
              f"{fk[1]} | {f(fs['ops'], 0)} | {f(bs['wall'] / fs['wall'], 2)} |")
    w("")
    w("### 1.5 ferry's phases (copy section medians)\n")
    w("Where ferry's wall time goes, from its log: the publish command (process start, connect, "
      "acknowledged write), publish start → the worker's \"migrating\" line, validation (LIST 1 key, "
      "HEAD bucket, PUT + DELETE of a probe) plus counting the source (a full LIST pass), and the copy "
      "pass (LIST again, page by page, copies, checkpoints). \"CPU at start\" is the worker's CPU "
      "from exec to having its partitions (the fixed startup cost included in every CPU figure above); "
      "\"CPU at exit\" adds the SIGTERM shutdown.\n")
    ferry_phase_table([(f"{wl} / {k[1]}", s) for wl, sums in copy_sums.items() for k, s in sums.items()
                       if k[0] == "ferry"])

# --- latency -------------------------------------------------------------------------------
lat = group("latency", "small")
if lat:
    mode = meta.get("LATENCY_MODE", "?")
    w("## 2. Small objects with 10 ms of added latency\n")
    if mode == "proxy":
        w("`tc qdisc add dev lo root netem delay 10ms` is **not available in this sandbox** "
          f"(`{meta.get('NETEM_ERROR', 'sch_netem missing')}`; the kernel is built without "
          "CONFIG_NET_SCH_NETEM and has no modules). Instead every S3 request goes through "
          "`bench/delayproxy`, a TCP proxy that delays each direction by 10 ms (like netem on lo, "
          "where every packet is delayed once: +20 ms per request/response round trip, plus one "
          "round trip for each new connection). Unlike netem on lo it delays only S3 traffic, not "
          "Kafka or Redis, which is closer to production. "
          f"Measured request time through it (keep-alive, S3Proxy error reply): {float(meta.get('LATENCY_RTT_S', 0)) * 1000:.1f} ms.\n")
    else:
        w("`tc qdisc add dev lo root netem delay 10ms` on loopback: all loopback traffic, including "
          "Kafka and Redis, is delayed (+20 ms per round trip).\n")
    w("Every tool at its defaults, and every tool at 16 requests in flight (c16). Throughput is bounded "
      "by requests in flight ÷ round-trip time.\n")
    sums = {k: summarize(v) for k, v in lat.items()}
    fs = sums.get(("ferry", "default"))
    w(f"{next(iter(sums.values()))['objects']:,} × 4 KiB; medians of {max(s['runs'] for s in sums.values())} run(s).\n")
    w("| tool | ok runs | wall s (min–max) | objects/s | client CPU s | CPU µs/object | peak RSS MiB | ferry speed ÷ tool | ferry CPU ÷ tool | same tool without delay, objects/s |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for k in ordered(sums):
        s = sums[k]
        base = copy_sums.get("small", {}).get(k)
        w(f"| {label(*k)} | {s['ok']}/{s['runs']} | {f(s['wall'])} ({f(s['wall_min'])}–{f(s['wall_max'])}) | {f(s['ops'], 0)} | "
          f"{f(s['cpu'])} | {f(s['us_obj'], 0)} | {f(s['rss'], 1)} | "
          f"{f(s['wall'] / fs['wall'], 2) if fs else '–'} | {f(fs['cpu'] / s['cpu'], 2) if fs and s['cpu'] else '–'} | "
          f"{f(base['ops'], 0) if base else '–'} |")
    w("")
    if fs:
        ferry_phase_table([("latency / ferry", fs)])

# --- across endpoints ----------------------------------------------------------------------
if group("cross"):
    w("## 2a. Across endpoints: every object streamed through the client\n")
    w("ferry with `s3.target.endpoint` set (GET on the source, PUT or UploadPart on the target, "
      "bytes through a bounded ring buffer) and rclone between two remotes (download, upload); "
      "s5cmd and aws-cli copy S3 to S3 only server-side, so they are not in this section. Both "
      "endpoints are the same S3Proxy, so the client's work, not the network, is compared. Every "
      "tool at its defaults and at 16 in flight.\n")
    cross_label = True
    copy_table("cross", "small", f"2a.1 Small objects: {int(meta.get('SMALL_N', 0)):,} × 4 KiB, streamed")
    copy_table("cross", "large", f"2a.2 Large objects: {int(meta.get('LARGE_N', 0))} × "
               f"{int(meta.get('LARGE_SIZE', 0)) >> 20} MiB, streamed")
    cross_label = False

# --- memory --------------------------------------------------------------------------------
mem = [r for r in rows if r.get("section") == "memory"]
if mem:
    w("## 3. Memory: peak RSS against the number of objects\n")
    ns = int(meta.get("MEM_SMALL", 0)); nl = int(meta.get("MEM_OBJECTS", 0))
    w(f"1-byte objects; one run each. ferry's figure is the worker's VmHWM when the dataset is done "
      f"(the process's peak RSS, including librdkafka's buffers); the peers' is `/usr/bin/time` max RSS.\n")
    w(f"| tool | peak RSS MiB at {ns:,} | peak RSS MiB at {nl:,} | growth | extra KiB per extra object | wall s at {nl:,} | CPU µs/object at {nl:,} |")
    w("|---|---|---|---|---|---|---|")
    by = defaultdict(dict)
    for r in mem:
        by[(r["tool"], r["variant"])][r["workload"]] = r
    for tool, variant in [(t, v) for v in ("default", "c16") for t in ("ferry", "s5cmd", "rclone", "aws")]:
        if (tool, variant) not in by:
            continue
        a, b = by[(tool, variant)].get("mem-small"), by[(tool, variant)].get("mem-large")
        if not a or not b:
            continue
        ra, rb = a["rss_kb"] / 1024, b["rss_kb"] / 1024
        w(f"| {label(tool, variant)} | {f(ra, 1)} | {f(rb, 1)} | ×{f(rb / ra, 2)} | "
          f"{f((b['rss_kb'] - a['rss_kb']) / max(1, nl - ns), 3)} | {f(b['wall_s'])} | {f(b['cpu_s'] / nl * 1e6, 0)} |"
          + ("" if b.get("ok") == 1 else " (target incomplete!)"))
    w("")
    w(f"Why {nl:,} and not 100,000 objects: S3Proxy's filesystem backend walks and sorts the whole prefix "
      "for **every** ListObjectsV2 page, so listing N keys costs O(N²): 10,000 keys list in ~3 s, "
      "100,000 keys did not finish listing in 10 minutes (S3Proxy at 60% of a core throughout; its in-memory "
      "backends are no better). Seeding 100,000 1-byte objects took 42 s. Run "
      "`bench/run --sections memory --mem-objects 100000` to try anyway (expect well over an hour). "
      "ferry keeps one page of keys (≤ 1000) at a time, so its RSS should not depend on N at all.\n")

# --- checkpoint ---------------------------------------------------------------------------
cp = group("checkpoint", "small")
if cp:
    w("## 4. Checkpoint overhead\n")
    w("The worker has no switch to turn checkpointing off. `copy.checkpoint_interval_ms=0` writes the "
      "checkpoint only at the end of each LIST page (1,000 keys), the default 1000 writes it at most "
      "once a second while a page is copied as well, and 10 writes it up to 100 times a second. Each "
      "checkpoint is one synchronous Redis round trip (a fenced script) made from the copy loop. "
      "\"Redis commands\" counts every command Redis processed during the run (lease, state, "
      "checkpoints).\n")
    sums = {k: summarize(v) for k, v in cp.items()}
    w(f"{next(iter(sums.values()))['objects']:,} × 4 KiB; medians of {max(s['runs'] for s in sums.values())} run(s).\n")
    w("| checkpoint_interval_ms | ok runs | wall s (min–max) | objects/s | worker CPU s | CPU µs/object | Redis commands | copy ms | wall ÷ interval-0 wall |")
    w("|---|---|---|---|---|---|---|---|---|")
    base = sums.get(("ferry", "interval-0"))
    for k in sorted(sums, key=lambda k: int(k[1].split("-")[1])):
        s = sums[k]
        w(f"| {k[1].split('-')[1]} | {s['ok']}/{s['runs']} | {f(s['wall'])} ({f(s['wall_min'])}–{f(s['wall_max'])}) | "
          f"{f(s['ops'], 0)} | {f(s['cpu'])} | {f(s['us_obj'], 0)} | {f(s['redis_cmds'], 0)} | {f(s['copy_ms'], 0)} | "
          f"{f(s['wall'] / base['wall'], 2) if base else '–'} |")
    w("")

# --- producer -------------------------------------------------------------------------------
ev = [r for r in rows if r.get("section") == "producer" and r.get("kind") == "event"]
par = [r for r in rows if r.get("section") == "producer" and r.get("kind") == "parallel"]
if ev:
    w("## 5. Producer and end-to-end latency\n")
    w("`ferry-producer publish` is one process per event: it starts, connects to Kafka, writes one "
      "event with acks=all and waits for the acknowledgement, then exits. Events/s is therefore "
      "process start-up bound, not librdkafka bound. End-to-end latency is from starting the publish "
      "command to the worker's \"migrating\" log line (a running worker, `worker.concurrency` 2, "
      "1-object datasets, one event every ~0.1 s so nothing queues). ms resolution of the log clock.\n")
    pub = [r["publish_ms"] for r in ev]
    e2e = [r["e2e_ms"] for r in ev if "e2e_ms" in r]
    aft = [r["after_ack_ms"] for r in ev if "after_ack_ms" in r]
    w("| measure | events | p50 | p99 | max |")
    w("|---|---|---|---|---|")
    w(f"| publish command, ms (sequential) | {len(pub)} | {f(pct(pub, 50), 0)} | {f(pct(pub, 99), 0)} | {f(max(pub), 0)} |")
    if e2e:
        w(f"| publish start → migration start, ms | {len(e2e)} | {f(pct(e2e, 50), 0)} | {f(pct(e2e, 99), 0)} | {f(max(e2e), 0)} |")
        w(f"| publish acknowledged → migration start, ms | {len(aft)} | {f(pct(aft, 50), 0)} | {f(pct(aft, 99), 0)} | {f(max(aft), 0)} |")
    w("")
    seq_rate = 1000 / statistics.mean(pub)
    w(f"- Sequential publishing: **{seq_rate:.1f} events/s** (1 ÷ the mean publish time, one process after "
      f"another, each waiting for its acknowledgement; the 0.1 s pause between events is not counted). "
      f"At the median publish time it would be {1000 / pct(pub, 50):.0f} events/s: the mean is pulled up by "
      f"{sum(1 for x in pub if x > 500)} publish(es) that took about a second.")
    for p in par:
        w(f"- {p['procs']} publish processes at once: **{p['events'] / p['wall_s']:.1f} events/s** "
          f"({p['events']} events in {p['wall_s']} s).")
    if len(e2e) < len(pub):
        w(f"- {len(pub) - len(e2e)} event(s) had no \"migrating\" line (not started within the wait).")
    w("")

# --- profile --------------------------------------------------------------------------------
psym = os.path.join(work, "perf-sym.txt")
if os.path.exists(psym):
    prof = [r for r in rows if r.get("section") == "profile"]
    w("## 6. Profile of the worker's hot path\n")
    pr = prof[0] if prof else None
    if pr:
        w(f"`perf record -e cpu-clock -F 4999 -p <worker>` while one worker copied {pr['objects']:,} × 4 KiB "
          f"(wall {pr['wall_s']} s, worker CPU {pr['cpu_s']} s = {pr['cpu_s'] / pr['objects'] * 1e6:.0f} µs/object "
          "with perf attached). Self time per function, all threads of the worker (the migration thread, "
          "librdkafka's threads, the lease thread). The VM exposes no hardware counters, so this is "
          "timer sampling.\n")
    ent = []
    rx = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$")
    for line in open(psym):
        m = rx.match(line)
        if m:
            ent.append((float(m.group(1)), m.group(2), m.group(3), m.group(4)))

    def category(dso, sym):
        d = dso.lower()
        s = sym.lower()
        if "kernel" in d or d.startswith("[k") or d == "[kernel.kallsyms]":
            return "kernel: syscalls (socket send/recv, epoll/poll, futex), scheduling"
        if "libcrypto" in d:
            return "OpenSSL libcrypto: SHA-256 / HMAC (SigV4)"
        if "libcurl" in d:
            return "libcurl: HTTP request/response handling"
        if "libexpat" in d:
            return "expat: XML parsing (LIST pages, CopyObject results)"
        if "hiredis" in d:
            return "hiredis: Redis client"
        if "rdkafka" in d:
            return "librdkafka: Kafka client threads"
        if d.startswith("libc.so") or d.startswith("libc-"):
            if any(x in s for x in ("malloc", "free", "alloc", "_int_", "tcache")):
                return "libc: malloc/free"
            if any(x in s for x in ("printf", "vfprintf", "strtol", "scanf")):
                return "libc: printf/formatting"
            return "libc: strings, memcpy, other"
        if "ferry" in d:
            if any(x in s for x in ("sigv4", "sign", "canonical", "sha", "hmac", "hex", "uri_encode", "encode")):
                return "ferry: request building and signing"
            if "xml" in s:
                return "ferry: XML handling"
            if "log" in s:
                return "ferry: logging"
            if any(x in s for x in ("redis", "state", "checkpoint")):
                return "ferry: Redis/state"
            return "ferry: copy loop, object store, other"
        if "vdso" in d:
            return "vDSO clock_gettime (timestamps taken by libcurl and ferry)"
        if "unknown" in d:
            return "unknown"
        return f"other libraries ({dso})"

    cats = defaultdict(float)
    for p, dso, _, sym in ent:
        cats[category(dso, sym)] += p
    total = sum(cats.values())
    w("Where the worker's CPU goes, grouped:\n")
    w("| share | group |")
    w("|---|---|")
    for c, p in sorted(cats.items(), key=lambda x: -x[1]):
        if p >= 0.5:
            w(f"| {p:.1f}% | {c} |")
    w("")
    pcomm = os.path.join(work, "perf-comm.txt")
    if os.path.exists(pcomm):
        th = []
        for line in open(pcomm):
            m = re.match(r"^\s*([\d.]+)%\s+(.+?)\s*$", line)
            if m:
                th.append((float(m.group(1)), m.group(2)))
        if th:
            w("By thread name: " + ", ".join(f"{n} {p:.1f}%" for p, n in th[:8]) + ".\n")
    w("Top functions (self time):\n")
    w("| self | library | function |")
    w("|---|---|---|")
    for p, dso, kind, sym in ent[:25]:
        w(f"| {p:.2f}% | {dso} | `{sym}` |")
    w("")
    if pr:
        kern = sum(p for c, p in cats.items() if c.startswith("kernel"))
        crypto = cats.get("OpenSSL libcrypto: SHA-256 / HMAC (SigV4)", 0)
        curl = cats.get("libcurl: HTTP request/response handling", 0)
        xml = cats.get("expat: XML parsing (LIST pages, CopyObject results)", 0) + cats.get("ferry: XML handling", 0)
        red = cats.get("hiredis: Redis client", 0) + cats.get("ferry: Redis/state", 0)
        kaf = cats.get("librdkafka: Kafka client threads", 0)
        logc = cats.get("ferry: logging", 0)
        us = pr["cpu_s"] / pr["objects"] * 1e6
        w("Reading: per object the worker spends about "
          f"{us * kern / 100:.0f} µs in the kernel, {us * curl / 100:.0f} µs in libcurl, "
          f"{us * crypto / 100:.0f} µs hashing/signing, {us * xml / 100:.0f} µs on XML, "
          f"{us * red / 100:.0f} µs on Redis, {us * kaf / 100:.0f} µs in librdkafka's threads and "
          f"{us * logc / 100:.0f} µs logging (of {us:.0f} µs in all, perf attached).\n")

# --- what limits ferry here (from the numbers above) ---------------------------------------
small = copy_sums.get("small", {}) if copy_sums else {}
fsm, s5 = small.get(("ferry", "default")), small.get(("s5cmd", "default"))
if fsm and fsm.get("copy_ms") and fsm.get("validate_count_ms") is not None:
    eng = fsm["validate_count_ms"] + fsm["copy_ms"]
    w("## 7. What limits ferry on this rig\n")
    w(f"- **Not the worker's CPU.** On the small workload the worker was on a CPU for "
      f"{fsm['cpu'] / fsm['wall'] * 100:.0f}% of the wall time ({f(fsm['us_obj'], 0)} µs per object, "
      f"{f(fsm['cpu'], 2)} s in {f(fsm['wall'], 1)} s); it waits on S3 the rest of the time.")
    w(f"- **Before the first copy.** {fsm['validate_count_ms'] / eng * 100:.0f}% of the engine time "
      f"({f(fsm['validate_count_ms'] / 1000, 2)} s of {f(eng / 1000, 1)} s) went to validation and, if any, "
      "a counting pass. A dataset below `fanout.copy_before_count` keys is not counted: it is listed once, "
      "by the copy, which requests the next page while the current one is copied. On S3Proxy a LIST page "
      "costs O(objects under the prefix); on S3 it is ~50–100 ms per 1,000 keys.")
    if s5:
        w(f"- **The S3 server.** S3Proxy spent {f(fsm['srv'] / fsm['objects'] * 1e3, 2)} ms of CPU per object "
          f"for ferry and {f(s5['srv'] / s5['objects'] * 1e3, 2)} ms for s5cmd, against ferry's own "
          f"{f(fsm['us_obj'] / 1e3, 2)} ms: the server, not the client, sets the pace here. Per object ferry "
          "sends one CopyObject (with `x-amz-copy-source-if-match`, so a source that changed after it was "
          "listed is not copied) and, when the copy's ETag does not settle it, HEADs to verify.")
    w("")

notes = []
if meta.get("PROFILE_ERROR"):
    notes.append(f"Profile: {meta['PROFILE_ERROR']}")
if notes:
    w("## Notes\n")
    for n in notes:
        w(f"- {n}")
    w("")
secs = [(k.replace("SECTION_SECS_", ""), v) for k, v in meta.items() if k.startswith("SECTION_SECS_")]
if secs:
    w("Section durations: " + ", ".join(f"{k} {int(v) // 60}m{int(v) % 60:02d}s" for k, v in secs) + ".\n")
print("\n".join(out))
