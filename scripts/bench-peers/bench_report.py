#!/usr/bin/env python3
"""Helper of scripts/bench (standard library only).

  bench_report.py record --out RUNS.jsonl --client C --scenario S --rep R
      --stdout FILE --time FILE --broker-ticks N --machine-ticks N
      --clk-tck HZ --records N --size S --topic T [--partitions P]
      [--count N] [--exit CODE]
    Parses one run (the driver's JSON line, or the Java tools' own output;
    GNU time's "%e %U %S %M") and appends one JSON line to RUNS.jsonl.
    Prints a one-line summary on stderr. Exits 1 when the run failed.
    --records is what the run must count (latency: the measured records).

  bench_report.py report --runs RUNS.jsonl --meta META.tsv --out RESULT.md
    Medians per client per scenario, skotch's ratios to each peer and to
    the best peer, as a markdown document (also printed on stdout).
"""

import argparse
import json
import re
import statistics
import sys

SCENARIOS = {
    "produce-defaults": "Produce, each client's defaults",
    "produce-equal": "Produce, equal settings (linger 5 ms, batch 1 MiB, buffer 16 MiB, acks=all, idempotence on)",
    "consume": "Consume from the beginning, each client's defaults",
    "consume-many": "Consume from the beginning, each client's defaults",
    "latency": "End-to-end latency, each client's producer and consumer defaults",
}
# Throughput scenarios (records/s tables); latency has its own table.
THROUGHPUT = [s for s in SCENARIOS if s != "latency"]
LATENCY_KEYS = ("p50_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms")
CLIENT_NAMES = {
    "skotch": "skotch",
    "java": "Java",
    "rdkafka": "librdkafka",
    "franz": "franz-go",
}


def parse_time(path):
    """GNU time -f '%e %U %S %M': wall, user, sys seconds, max RSS KB."""
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip()]
    # A killed command makes GNU time print "Command terminated by signal"
    # before the format line; the format line is the last one.
    fields = lines[-1].split()
    return float(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])


def parse_driver(text):
    """The last JSON line of a driver (skotch, librdkafka, franz-go)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            return d["records"], d["bytes"], d["seconds"], d
    raise ValueError("no JSON line in the driver's output")


def parse_java_produce(text):
    """ProducerPerformance's final line: 'N records sent, X records/sec
    (Y MB/sec), ... 50th, ...'. Its timer runs from after the producer is
    created to after flush()."""
    last = None
    for line in text.splitlines():
        m = re.match(r"\s*(\d+) records sent, ([\d.]+) records/sec", line)
        if m and "50th" in line:
            last = m
    if not last:
        raise ValueError("no final 'records sent' line from ProducerPerformance")
    n, rate = int(last.group(1)), float(last.group(2))
    return n, rate, {"java_records_per_s": rate}


def parse_java_consume(text):
    """ConsumerPerformance's CSV line after its header; fetch.time.ms is
    its elapsed time less the group join (rebalance.time.ms)."""
    if "WARNING: Exiting before consuming" in text:
        raise ValueError("ConsumerPerformance timed out before reading every record")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("start.time,"):
            header = [h.strip() for h in line.split(",")]
            values = [v.strip() for v in lines[i + 1].split(",")]
            row = dict(zip(header, values))
            return (
                int(row["data.consumed.in.nMsg"]),
                float(row["data.consumed.in.MB"]),
                int(row["fetch.time.ms"]),
                int(row["rebalance.time.ms"]),
            )
    raise ValueError("no result line from ConsumerPerformance")


def cmd_record(a):
    run = {
        "rep": a.rep,
        "scenario": a.scenario,
        "client": a.client,
        "topic": a.topic,
        "ok": False,
    }
    err = None
    try:
        with open(a.stdout, errors="replace") as f:
            text = f.read()
        wall, user, sys_s, rss = parse_time(a.time)
        run.update(wall_s=wall, user_s=user, sys_s=sys_s, max_rss_kb=rss)
        run["broker_cpu_s"] = a.broker_ticks / a.clk_tck
        # Everything else the machine did meanwhile (other processes: a
        # compile, another benchmark), in cores busy on average.
        other = a.machine_ticks / a.clk_tck - run["broker_cpu_s"] - user - sys_s
        run["other_cores"] = max(other, 0.0) / max(wall, 1e-3)
        run["load1"] = a.load
        if a.exit != 0:
            raise ValueError(f"exit status {a.exit}")
        if a.partitions is not None:
            run["partitions"] = a.partitions
        if a.client == "java" and a.scenario.startswith("produce"):
            n, rate, extra = parse_java_produce(text)
            run.update(records=n, bytes=n * a.size, seconds=n / rate, **extra)
        elif a.client == "java" and a.scenario != "latency":
            n, mb, fetch_ms, join_ms = parse_java_consume(text)
            run.update(
                records=n,
                bytes=round(mb * 1024 * 1024),
                seconds=fetch_ms / 1000.0,
                java_join_ms=join_ms,
            )
        else:
            n, b, s, d = parse_driver(text)
            run.update(records=n, bytes=b, seconds=s)
            for k in ("version", "idempotent", "rate", "warmup_records") + LATENCY_KEYS:
                if k in d:
                    run[k] = d[k]
            if a.scenario == "latency":
                missing = [k for k in LATENCY_KEYS if k not in d]
                if missing:
                    raise ValueError(f"no {', '.join(missing)} in the driver's output")
        if run["records"] != a.records:
            raise ValueError(f"{run['records']} records, {a.records} expected")
        if a.count is not None and a.count != a.records:
            raise ValueError(f"the topic holds {a.count} records, {a.records} expected")
        if a.count is not None:
            run["topic_records"] = a.count
        run["ok"] = True
    except (OSError, ValueError, KeyError, IndexError) as e:
        err = str(e)
        run["error"] = err
    with open(a.out, "a") as f:
        f.write(json.dumps(run, sort_keys=True) + "\n")
    if err:
        print(f"bench:   FAILED: {err}", file=sys.stderr)
        return 1
    n = run["records"]
    if a.scenario == "latency":
        handled = n + run.get("warmup_records", 0)
        print(
            "bench:   p50 {:.2f} ms  p99 {:.2f} ms  max {:.2f} ms  sent {:.0f} rec/s  wall {:.2f} s  "
            "CPU {:.2f} us/rec  RSS {:.0f} MB  broker {:.2f} us/rec  other {:.2f} cores".format(
                run["p50_ms"],
                run["p99_ms"],
                run["max_ms"],
                n / max(run["seconds"], 1e-9),
                run["wall_s"],
                (run["user_s"] + run["sys_s"]) * 1e6 / handled,
                run["max_rss_kb"] / 1024,
                run["broker_cpu_s"] * 1e6 / handled,
                run["other_cores"],
            ),
            file=sys.stderr,
        )
        return 0
    print(
        "bench:   {:>9.0f} rec/s {:>7.1f} MB/s  work {:.2f} s  wall {:.2f} s  "
        "CPU {:.2f} us/rec  RSS {:.0f} MB  broker {:.2f} us/rec  other {:.2f} cores".format(
            n / run["seconds"],
            run["bytes"] / 1e6 / run["seconds"],
            run["seconds"],
            run["wall_s"],
            (run["user_s"] + run["sys_s"]) * 1e6 / n,
            run["max_rss_kb"] / 1024,
            run["broker_cpu_s"] * 1e6 / n,
            run["other_cores"],
        ),
        file=sys.stderr,
    )
    return 0


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}f}"


def summarize(runs):
    """{(scenario, client): {metric: median}} over the successful runs."""
    out = {}
    keys = sorted({(r["scenario"], r["client"]) for r in runs})
    for key in keys:
        rs = [r for r in runs if (r["scenario"], r["client"]) == key]
        ok = [r for r in rs if r.get("ok")]
        s = {"runs": len(rs), "ok": len(ok)}
        if ok:
            # Records the process handled: latency runs also send and read
            # the warm-up records.
            def handled(r):
                return r["records"] + r.get("warmup_records", 0)

            s["rps"] = med([r["records"] / r["seconds"] for r in ok])
            s["mbps"] = med([r["bytes"] / 1e6 / r["seconds"] for r in ok])
            s["seconds"] = med([r["seconds"] for r in ok])
            s["wall"] = med([r["wall_s"] for r in ok])
            s["cpu_us"] = med([(r["user_s"] + r["sys_s"]) * 1e6 / handled(r) for r in ok])
            s["user_share"] = med([r["user_s"] / max(r["user_s"] + r["sys_s"], 1e-9) for r in ok])
            s["rss_mb"] = med([r["max_rss_kb"] / 1024 for r in ok])
            s["broker_us"] = med([r["broker_cpu_s"] * 1e6 / handled(r) for r in ok])
            for k in LATENCY_KEYS:
                if all(k in r for r in ok):
                    s[k] = med([r[k] for r in ok])
                    s[k + "_spread"] = (min(r[k] for r in ok), max(r[k] for r in ok))
            parts = {r["partitions"] for r in ok if "partitions" in r}
            if len(parts) == 1:
                s["partitions"] = parts.pop()
            s["other"] = med([r.get("other_cores", 0.0) for r in ok])
            s["spread"] = (
                min(r["records"] / r["seconds"] for r in ok),
                max(r["records"] / r["seconds"] for r in ok),
            )
            if any("idempotent" in r for r in ok):
                s["idempotent"] = all(r.get("idempotent") for r in ok)
        out[key] = s
    return out


def heading(scen, summary):
    """A scenario's section title, with its partition count when known."""
    desc = SCENARIOS[scen]
    parts = {s.get("partitions") for (sc, _), s in summary.items() if sc == scen} - {None}
    if len(parts) == 1:
        desc = desc.replace(", each", f", {parts.pop()} partitions, each", 1)
    return desc


def latency_table(md, summary, order):
    rows = [(c, summary[("latency", c)]) for c in order if ("latency", c) in summary]
    if not rows:
        return
    md.append("")
    md.append(f"## {heading('latency', summary)}")
    md.append("")
    md.append(
        "Latency of a record = the wall clock when the consumer's poll returned it minus "
        "its timestamp (set to the wall clock in ms just before send), over the measured "
        "records (the warm-up ones left out); medians over the repetitions of each run's "
        "percentiles, in ms. sent records/s = measured records over the time their sending "
        "took (the pacing; should be the rate asked for). CPU per record counts every record "
        "sent and read (warm-up included), start-up included."
    )
    md.append("")
    md.append(
        "| client | p50 ms | p99 ms | p99.9 ms | max ms | mean ms | p99 min-max | sent records/s | wall s | client CPU µs/record | peak RSS MB | broker CPU µs/record | other load | ok runs |"
    )
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c, s in rows:
        name = CLIENT_NAMES.get(c, c)
        if not s["ok"] or "p50_ms" not in s:
            md.append(f"| {name} | - | - | - | - | - | - | - | - | - | - | - | - | 0/{s['runs']} |")
            continue
        md.append(
            "| {} | {} | {} | {} | {} | {} | {}-{} | {} | {} | {} | {} | {} | {} | {}/{} |".format(
                name,
                fmt(s["p50_ms"], 2),
                fmt(s["p99_ms"], 2),
                fmt(s["p999_ms"], 2),
                fmt(s["max_ms"], 2),
                fmt(s["mean_ms"], 2),
                fmt(s["p99_ms_spread"][0], 2),
                fmt(s["p99_ms_spread"][1], 2),
                fmt(s["rps"]),
                fmt(s["wall"], 2),
                fmt(s["cpu_us"], 2),
                fmt(s["rss_mb"]),
                fmt(s["broker_us"], 2),
                fmt(s["other"], 2),
                s["ok"],
                s["runs"],
            )
        )


def latency_ratios(md, summary, order):
    sk = summary.get(("latency", "skotch"))
    if not sk or not sk["ok"] or "p50_ms" not in sk:
        return
    peers = [
        c
        for c in order
        if c != "skotch" and summary.get(("latency", c), {}).get("ok") and "p50_ms" in summary[("latency", c)]
    ]
    if not peers:
        return
    md.append("")
    md.append(
        "Latency ratios = skotch's figure ÷ the peer's (below 1: skotch delivers sooner); "
        "CPU ratio as above."
    )
    md.append("")
    md.append("| peer | p50 ratio | p99 ratio | max ratio | client CPU/record ratio | broker CPU/record ratio |")
    md.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for c in peers:
        p = summary[("latency", c)]
        md.append(
            "| {} | {} | {} | {} | {} | {} |".format(
                CLIENT_NAMES.get(c, c),
                fmt(sk["p50_ms"] / p["p50_ms"], 2) if p["p50_ms"] else "-",
                fmt(sk["p99_ms"] / p["p99_ms"], 2) if p["p99_ms"] else "-",
                fmt(sk["max_ms"] / p["max_ms"], 2) if p["max_ms"] else "-",
                fmt(sk["cpu_us"] / p["cpu_us"], 2),
                fmt(sk["broker_us"] / p["broker_us"], 2) if p["broker_us"] else "-",
            )
        )


def best_peer_table(md, summary, order):
    """Per scenario and headline metric: skotch against the best peer."""
    rows = []
    metrics = [(scen, "rps", "records/s", True) for scen in THROUGHPUT] + [
        ("latency", "p50_ms", "p50 ms", False),
        ("latency", "p99_ms", "p99 ms", False),
        ("latency", "max_ms", "max ms", False),
    ]
    for scen, key, label, higher_better in metrics:
        sk = summary.get((scen, "skotch"))
        if not sk or not sk["ok"] or key not in sk:
            continue
        peers = [
            (c, summary[(scen, c)][key])
            for c in order
            if c != "skotch" and summary.get((scen, c), {}).get("ok") and key in summary[(scen, c)]
        ]
        if not peers:
            continue
        best, value = (max if higher_better else min)(peers, key=lambda p: p[1])
        digits = 0 if key == "rps" else 2
        ratio = sk[key] / value if value else None
        rows.append(
            "| {} | {} | {} | {} | {} | {} |".format(
                scen, label, fmt(sk[key], digits), CLIENT_NAMES.get(best, best), fmt(value, digits), fmt(ratio, 2)
            )
        )
    if not rows:
        return
    md.append("")
    md.append("## skotch against the best peer")
    md.append("")
    md.append(
        "Per scenario, the peer with the highest records/s (the lowest latency) and "
        "skotch's figure ÷ that peer's: above 1 is better for records/s, below 1 for latency."
    )
    md.append("")
    md.append("| scenario | metric | skotch | best peer | its figure | ratio |")
    md.append("| --- | --- | ---: | --- | ---: | ---: |")
    md.extend(rows)


def cmd_report(a):
    runs = []
    with open(a.runs) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    meta = []
    with open(a.meta) as f:
        for line in f:
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                meta.append((k, v))
    summary = summarize(runs)
    order = [c for c in ("skotch", "java", "rdkafka", "franz") if any(r["client"] == c for r in runs)]
    md = []
    title = dict(meta).get("title", "skotch against other Kafka clients")
    md.append(f"# {title}")
    md.append("")
    for k, v in meta:
        if k != "title":
            md.append(f"- {k}: {v}")
    md.append("")
    md.append(
        "Medians over the repetitions. records/s and MB/s (10^6 bytes of record values per s) "
        "use each client's own work time (see below); wall = the whole process "
        "(start-up included); client CPU = the process's user+sys time (GNU time) per record, "
        "start-up included; broker CPU = the broker JVM's utime+stime during the run per record; "
        "RSS = the process's peak resident set; other load = CPU cores kept busy by "
        "anything else on the machine during the run (/proc/stat less the client and the "
        "broker; near 0 on a quiet machine)."
    )
    for scen in THROUGHPUT:
        rows = [(c, summary.get((scen, c))) for c in order if (scen, c) in summary]
        if not rows:
            continue
        md.append("")
        md.append(f"## {heading(scen, summary)}")
        md.append("")
        md.append(
            "| client | records/s | MB/s | work s | wall s | client CPU µs/record | peak RSS MB | broker CPU µs/record | records/s min-max | other load | ok runs |"
        )
        md.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c, s in rows:
            name = CLIENT_NAMES.get(c, c)
            if s.get("idempotent") is False and scen == "produce-equal":
                name += " (not idempotent)"
            if not s["ok"]:
                md.append(f"| {name} | - | - | - | - | - | - | - | - | - | 0/{s['runs']} |")
                continue
            md.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {}-{} | {} | {}/{} |".format(
                    name,
                    fmt(s["rps"]),
                    fmt(s["mbps"], 1),
                    fmt(s["seconds"], 2),
                    fmt(s["wall"], 2),
                    fmt(s["cpu_us"], 2),
                    fmt(s["rss_mb"]),
                    fmt(s["broker_us"], 2),
                    fmt(s["spread"][0]),
                    fmt(s["spread"][1]),
                    fmt(s["other"], 2),
                    s["ok"],
                    s["runs"],
                )
            )
    latency_table(md, summary, order)
    if "skotch" in order and len(order) > 1:
        md.append("")
        md.append("## skotch against each peer")
        md.append("")
        md.append(
            "records/s ratio = skotch's records/s ÷ the peer's (above 1: skotch is faster); "
            "CPU ratio = skotch's client CPU per record ÷ the peer's (below 1: skotch uses less); "
            "broker ratio likewise for the broker's CPU per record."
        )
        md.append("")
        md.append("| scenario | peer | records/s ratio | client CPU/record ratio | broker CPU/record ratio |")
        md.append("| --- | --- | ---: | ---: | ---: |")
        for scen in THROUGHPUT:
            sk = summary.get((scen, "skotch"))
            if not sk or not sk["ok"]:
                continue
            for c in order:
                if c == "skotch":
                    continue
                p = summary.get((scen, c))
                if not p or not p["ok"]:
                    continue
                md.append(
                    "| {} | {} | {} | {} | {} |".format(
                        scen,
                        CLIENT_NAMES.get(c, c),
                        fmt(sk["rps"] / p["rps"], 2),
                        fmt(sk["cpu_us"] / p["cpu_us"], 2),
                        fmt(sk["broker_us"] / p["broker_us"], 2) if p["broker_us"] else "-",
                    )
                )
    if "skotch" in order and len(order) > 1:
        latency_ratios(md, summary, order)
        best_peer_table(md, summary, order)
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        md.append("")
        md.append("## Failed runs")
        md.append("")
        for r in failed:
            md.append(f"- rep {r['rep']} {r['scenario']} {r['client']}: {r.get('error')}")
    md.append("")
    md.append("## What each client ran")
    md.append("")
    md.append(NOTES.strip())
    md.append("")
    text = "\n".join(md)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    return 0


NOTES = """
- Workload: unkeyed records with a value of the given size, a fresh topic
  (RF 1) per produce run, acks=all and no compression for every client.
  Consumers read the same topic, written once before the runs by skotch's
  producer with Java's default batching (linger 5 ms, batch 16 KiB);
  consume-many reads another one, written the same way, with more
  partitions (the same records spread thinner).
- Latency: one process per client, its consumer (client defaults,
  fetch.min.bytes 1, fetch max wait 500 ms; every partition assigned at
  the earliest offset, no group) started and polled once before its
  producer (client defaults) sends at a fixed rate, paced to a schedule
  (record i due at start + i/rate; the sender sleeps until the next one is
  due), into a fresh topic. Each record's timestamp (CreateTime) is set to
  the wall clock in ms just before send; its latency is the wall clock (µs)
  when the consumer's poll returns it minus that timestamp, so every
  figure carries the timestamp's truncation to the ms (0-1 ms, 0.5 on
  average), alike for every client. Records sent during the warm-up
  (marked in their value) are read but not counted. Drivers: skotch's
  `bench_client latency` (two `Client`s, producer on a tokio task),
  `scripts/bench-peers/LatencyBench.java` (KafkaProducer on its own
  thread, KafkaConsumer polling on the main one), the librdkafka driver
  (producer on a pthread, `rd_kafka_consumer_poll` one record at a time)
  and the franz-go driver (producer goroutine, `PollFetches`; franz-go's
  fetch max wait, 5 s by default, set to 500 ms). Producer linger by
  default: skotch, Java and librdkafka 5 ms, franz-go 10 ms; librdkafka's
  producer is not idempotent, the others are.
- Order: in each repetition every scenario runs every client once, the
  client order rotating from one repetition to the next.
- skotch: `examples/bench_client.rs` (release build), one tokio runtime
  with a worker per core; sends without awaiting each delivery: settled
  delivery futures are taken off a queue as they complete (each result
  checked), then flush(). Defaults (Java's): linger 5 ms, batch 16 KiB,
  buffer 32 MiB; idempotent (as Java). Timer: from before `Client::connect`
  to the last delivery result / record. The consumer assigns every
  partition (no group) and checks CRCs (skotch's default).
- Java: kafka-tools ProducerPerformance (`--throughput -1`, one callback
  per record recording latency) and ConsumerPerformance, JVM flags as the
  kafka-*-perf-test.sh scripts (-Xmx512M, G1). Producer defaults: linger
  5 ms, batch 16 KiB, buffer 32 MiB, idempotent. Timer (the tool's own):
  from after the producer is created to after flush(). ConsumerPerformance
  subscribes with a new consumer group and forces check.crcs=false; its
  work time here is its fetch.time.ms (elapsed minus the group join). Its
  client CPU includes JVM start-up and JIT compilation.
- librdkafka: `scripts/bench-peers/rdkafka_bench.c`, the system's
  librdkafka (Debian librdkafka-dev). Producer defaults: linger 5 ms,
  batch.size 1 MB capped by batch.num.messages 10000, not idempotent;
  equal settings also lift batch.num.messages and
  queue.buffering.max.messages so that bytes bind. The payload is passed
  without RD_KAFKA_MSG_F_COPY. The consumer assigns every partition at
  the beginning (no group join) and reads with rd_kafka_consumer_poll;
  check.crcs is false by default.
- franz-go: `scripts/bench-peers/franz/main.go`. Producer defaults: linger
  10 ms, batches up to 1 000 012 bytes, at most 50 000 buffered records,
  idempotent, one produce request in flight per broker; its default
  compression (snappy) is overridden to none. Equal settings set
  MaxBufferedBytes and lift MaxBufferedRecords. The consumer reads every
  partition directly (no group); CRCs are checked.
- Broker CPU is read from /proc/<pid>/stat just before and after each
  client process, so it includes the broker's background work during the
  run (its idle rate is in the header).
"""


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--out", required=True)
    r.add_argument("--client", required=True)
    r.add_argument("--scenario", required=True)
    r.add_argument("--rep", type=int, required=True)
    r.add_argument("--stdout", required=True)
    r.add_argument("--time", required=True)
    r.add_argument("--broker-ticks", type=int, required=True)
    r.add_argument("--machine-ticks", type=int, required=True)
    r.add_argument("--load", type=float, default=0.0)
    r.add_argument("--clk-tck", type=int, required=True)
    r.add_argument("--records", type=int, required=True)
    r.add_argument("--size", type=int, required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--partitions", type=int)
    r.add_argument("--count", type=int)
    r.add_argument("--exit", type=int, default=0)
    q = sub.add_parser("report")
    q.add_argument("--runs", required=True)
    q.add_argument("--meta", required=True)
    q.add_argument("--out", required=True)
    a = p.parse_args()
    return cmd_record(a) if a.cmd == "record" else cmd_report(a)


if __name__ == "__main__":
    sys.exit(main())
