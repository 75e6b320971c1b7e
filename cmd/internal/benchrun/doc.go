// Command benchrun is `make bench`: it measures the figures of issue 8 on
// this machine and rewrites the generated part of BENCHMARKS.md (between
// the bench:begin and bench:end markers) with them, the date, the machine
// and the exact commands. `make bench-quick` runs the same steps with small
// sizes and prints the result without writing the file: a smoke run that
// proves the driver works.
//
// What it runs, each several times (medians are reported, with the range):
//
//   - hot path: BenchmarkHotPath of ./mqtt (topic, decode, detect), from a
//     test binary built here, and the same benchmark built for arm64 and
//     run under qemu-aarch64-static, interleaved, for the ARM ratio;
//   - fault storm: BenchmarkStorm of ./store (group commit against one
//     transaction per ticket, in the same process, side by side);
//   - ingest: lightsim's load mode → a private mosquitto → the real
//     edge-agent and, at the same time on the same broker, mosquitto_sub;
//   - drain: the real agent with 10,000 tickets pre-seeded in its store
//     against m2m-sim with 20 ms latency, duplicates checked in the
//     simulator's record;
//   - memory: VmRSS of the real agent tracking 10,000 and 100,000 devices;
//   - start-up: exec of the real agent to READY=1 on a NOTIFY_SOCKET the
//     driver listens on, with 100,000 finished tickets in the store;
//   - size: `make cross` for linux/arm64.
//
// It starts processes through cmd/internal/rig and stops every one it
// started. It holds no product logic and changes no product file: the only
// file it writes outside its temporary folder is BENCHMARKS.md.
package main
