/* Benchmark entry points driven by `ollamax bench ...`. Each takes the
 * arguments after the subcommand name (argv[0] is the subcommand), prints a
 * table and one JSON line on stdout, and returns a process exit status. */
#ifndef OX_BENCH_H
#define OX_BENCH_H

/* ollamax bench infer MODEL|--synthetic q8_0|q4_0|q4_k_m [--threads N]
 *                      [--prompt N] [--gen N] [--keep PATH]
 * Prompt tokens/s (one batched eval of N random tokens), decode tokens/s (N
 * single-token evals after the prompt), load time, peak RSS. --synthetic
 * writes a llama3.2-1B-shaped random model (1.24 B parameters) to a temp file
 * and removes it afterwards (--keep PATH: write it there and keep it). */
int bench_infer_main(int argc, char **argv);

/* ollamax bench ingest [--size 1G] [--rounds 2]
 * POST /api/blobs throughput of a real daemon against `openssl dgst -sha256`
 * of the same file in the same run, and the idle daemon's RSS. */
int bench_ingest_main(int argc, char **argv);

/* ollamax bench transfer [--peers N] [--size 128M] [--link RATE]
 * One origin and N receiving daemons pull one blob through the swarm, then
 * over plain HTTP from the origin; per-peer times, throughput, origin bytes,
 * CPU per GB, the lower bound size/link and the ratios (needs root for
 * --link: network namespaces shaped with tc tbf). */
int bench_transfer_main(int argc, char **argv);

#endif
