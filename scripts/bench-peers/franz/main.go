// The franz-go peer of scripts/bench: produces N records of S bytes,
// consumes N records from the beginning of every partition of a topic, or
// measures end-to-end latency, and prints one JSON line with the time the
// work took.
//
//	franz-bench produce --bootstrap B --topic T --records N --record-size S
//	    [--linger-ms L] [--batch-size BYTES] [--buffer-memory BYTES]
//	    [--acks all|1|0] [--idempotence true|false|default]
//	    [--compression none|gzip|snappy|lz4|zstd|default]
//	franz-bench consume --bootstrap B --topic T --records N
//	franz-bench latency --bootstrap B --topic T [--rate 10000] [--seconds 20]
//	    [--warmup-seconds 2] [--record-size 100] [--linger-ms L]
//	franz-bench version
//
// Options left out keep franz-go's own defaults, except compression: the
// benchmark's workload is uncompressed, so "none" is the default here
// (franz-go itself prefers snappy); "--compression default" keeps franz-go's.
// The timer starts after the client is created (no connection yet) and
// stops when the last record is acknowledged (produce, after Flush) or
// read (consume); it matches the other drivers.
//
// latency does what examples/bench_client.rs's does: a consumer client
// (franz-go's defaults but FetchMaxWait 500 ms, Java's fetch.max.wait.ms,
// instead of 5 s; fetch min bytes 1; every partition from the start, no
// group) polls for 200 ms; then a producer client (defaults: linger 10 ms,
// idempotent; compression none) on its own goroutine sends --rate
// records/s paced to a schedule (record i due at start + i/rate), each
// with Timestamp = time.Now() just before Produce (sent in ms). The
// consumer takes the wall clock in us whenever PollFetches returns and
// records, for each measured record (value starting with 'M'; warm-up
// ones start with 'W'), that time minus the record's timestamp.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "franz-bench: "+format+"\n", args...)
	os.Exit(1)
}

// franzVersion is the franz-go module version this binary was built with.
func franzVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/twmb/franz-go" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

type latencyResult struct {
	result
	Rate          int64   `json:"rate"`
	WarmupRecords int64   `json:"warmup_records"`
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
	P999          float64 `json:"p999_ms"`
	Max           float64 `json:"max_ms"`
	Mean          float64 `json:"mean_ms"`
}

type result struct {
	Client  string  `json:"client"`
	Op      string  `json:"op"`
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Version string  `json:"version"`
}

func emit(op string, records, bytes int64, elapsed time.Duration) {
	line, _ := json.Marshal(result{"franz-go", op, records, bytes, elapsed.Seconds(), franzVersion()})
	fmt.Println(string(line))
}

func main() {
	if len(os.Args) < 2 {
		die("usage: franz-bench produce|consume|version [options]")
	}
	op := os.Args[1]
	if op == "version" {
		fmt.Println(franzVersion())
		return
	}
	fs := flag.NewFlagSet(op, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "127.0.0.1:9092", "bootstrap servers")
	topic := fs.String("topic", "", "topic")
	records := fs.Int64("records", 1_000_000, "records to produce or consume")
	size := fs.Int("record-size", 100, "value size in bytes (produce)")
	linger := fs.Int("linger-ms", -1, "linger in ms (-1: franz-go's default)")
	batch := fs.Int("batch-size", -1, "max record batch bytes (-1: default)")
	buffer := fs.Int("buffer-memory", -1, "max buffered bytes (-1: default, unlimited bytes, 50000 records)")
	acks := fs.String("acks", "all", "all, 1 or 0")
	idem := fs.String("idempotence", "default", "true, false or default (franz-go is idempotent by default)")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4, zstd or default")
	rate := fs.Int64("rate", 10_000, "records per second (latency)")
	seconds := fs.Int64("seconds", 20, "seconds measured (latency)")
	warmup := fs.Int64("warmup-seconds", 2, "seconds sent before, not measured (latency)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		die("%v", err)
	}
	if *topic == "" {
		die("--topic is required")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*bootstrap, ",")...)}
	switch op {
	case "produce":
		switch *acks {
		case "all", "-1":
			opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		case "1":
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
		case "0":
			opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
		default:
			die("bad --acks %q", *acks)
		}
		switch *idem {
		case "true":
			if *acks != "all" && *acks != "-1" {
				die("idempotence needs --acks all")
			}
		case "false":
			opts = append(opts, kgo.DisableIdempotentWrite())
		case "default":
			if *acks != "all" && *acks != "-1" {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
		default:
			die("bad --idempotence %q", *idem)
		}
		switch *compression {
		case "default":
		case "none":
			opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
		case "gzip":
			opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
		case "snappy":
			opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
		case "lz4":
			opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
		case "zstd":
			opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		default:
			die("bad --compression %q", *compression)
		}
		if *linger >= 0 {
			opts = append(opts, kgo.ProducerLinger(time.Duration(*linger)*time.Millisecond))
		}
		if *batch > 0 {
			opts = append(opts, kgo.ProducerBatchMaxBytes(int32(*batch)))
		}
		if *buffer > 0 {
			// Like buffer.memory: a byte limit. The record limit is lifted
			// so that bytes, not franz-go's 50,000-record default, bind.
			opts = append(opts, kgo.MaxBufferedBytes(*buffer), kgo.MaxBufferedRecords(1<<30))
		}
		produce(opts, *topic, *records, *size)
	case "latency":
		if *rate <= 0 || *seconds <= 0 || *warmup < 0 {
			die("bad --rate, --seconds or --warmup-seconds")
		}
		if *linger >= 0 {
			opts = append(opts, kgo.ProducerLinger(time.Duration(*linger)*time.Millisecond))
		}
		latency(opts, *topic, *rate, *seconds, *warmup, max(*size, 1))
	case "consume":
		opts = append(opts,
			kgo.ConsumeTopics(*topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		consume(opts, *records)
	default:
		die("unknown command %q", op)
	}
}

func produce(opts []kgo.Opt, topic string, n int64, size int) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	value := make([]byte, size)
	for i := range value {
		value[i] = byte('A' + i%26)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			if failed.Add(1) == 1 {
				firstErr.Store(err)
			}
		}
	}
	ctx := context.Background()
	start := time.Now()
	for i := int64(0); i < n; i++ {
		// Produce blocks while the buffer is full; the value is shared.
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		die("flush: %v", err)
	}
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		die("%d records failed, first: %v", f, firstErr.Load())
	}
	emit("produce", n, n*int64(size), elapsed)
}

func consume(opts []kgo.Opt, n int64) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var got, bytes int64
	start := time.Now()
	for got < n {
		fetches := cl.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			die("fetch: %v (after %d records)", errs[0].Err, got)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	emit("consume", got, bytes, time.Since(start))
}

func percentileMs(sorted []int64, p float64) float64 {
	rank := int(p * float64(len(sorted)))
	if float64(rank) < p*float64(len(sorted)) {
		rank++
	}
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1]) / 1000
}

func latency(base []kgo.Opt, topic string, rate, seconds, warmup int64, size int) {
	warm, measured := rate*warmup, rate*seconds
	total := warm + measured
	cons, err := kgo.NewClient(append(slices.Clone(base),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		die("client: %v", err)
	}
	defer cons.Close()
	ready, cancelReady := context.WithTimeout(context.Background(), 200*time.Millisecond)
	first := cons.PollFetches(ready)
	cancelReady()
	if first.NumRecords() > 0 {
		die("topic %s is not empty", topic)
	}

	prod, err := kgo.NewClient(append(slices.Clone(base),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	if err != nil {
		die("client: %v", err)
	}
	defer prod.Close()
	ctx := context.Background()
	warmValue, value := make([]byte, size), make([]byte, size)
	for i := range value {
		value[i] = byte('A' + i%26)
		warmValue[i] = value[i]
	}
	warmValue[0], value[0] = 'W', 'M'
	var failed atomic.Int64
	var firstErr atomic.Value
	done := func(_ *kgo.Record, err error) {
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	var windowStart, windowEnd time.Time
	sent := make(chan error, 1)
	go func() {
		start := time.Now()
		for i := int64(0); i < total; {
			due := min(int64(time.Since(start))*rate/int64(time.Second)+1, total)
			for ; i < due; i++ {
				now := time.Now()
				v := value
				if i < warm {
					v = warmValue
				}
				prod.Produce(ctx, &kgo.Record{Topic: topic, Value: v, Timestamp: time.Now()}, done)
				if i == warm {
					windowStart = now
				}
				windowEnd = now
			}
			if i < total {
				time.Sleep(time.Until(start.Add(time.Duration(i * int64(time.Second) / rate))))
			}
		}
		sent <- prod.Flush(ctx)
	}()

	latencies := make([]int64, 0, measured)
	var got, bytes int64
	var deadline time.Time
	finished := false
	for got < total {
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cons.PollFetches(pollCtx)
		cancel()
		now := time.Now().UnixMicro()
		for _, e := range fetches.Errors() {
			if e.Err != context.DeadlineExceeded {
				die("fetch: %v (after %d records)", e.Err, got)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			if len(r.Value) > 0 && r.Value[0] == 'M' {
				latencies = append(latencies, now-r.Timestamp.UnixMilli()*1000)
				bytes += int64(len(r.Value))
			}
		})
		if !finished {
			select {
			case err := <-sent:
				if err != nil {
					die("flush: %v", err)
				}
				finished = true
				deadline = time.Now().Add(30 * time.Second)
			default:
			}
		}
		if finished && time.Now().After(deadline) {
			die("%d of %d records arrived within 30 s of the last send", got, total)
		}
	}
	if !finished {
		if err := <-sent; err != nil {
			die("flush: %v", err)
		}
	}
	if f := failed.Load(); f > 0 {
		die("%d records failed, first: %v", f, firstErr.Load())
	}
	if int64(len(latencies)) != measured {
		die("%d measured records, %d sent", len(latencies), measured)
	}
	slices.Sort(latencies)
	var sum float64
	for _, l := range latencies {
		sum += float64(l)
	}
	line, _ := json.Marshal(latencyResult{
		result:        result{"franz-go", "latency", measured, bytes, windowEnd.Sub(windowStart).Seconds(), franzVersion()},
		Rate:          rate,
		WarmupRecords: warm,
		P50:           percentileMs(latencies, 0.50),
		P99:           percentileMs(latencies, 0.99),
		P999:          percentileMs(latencies, 0.999),
		Max:           percentileMs(latencies, 1.0),
		Mean:          sum / float64(len(latencies)) / 1000,
	})
	fmt.Println(string(line))
}
