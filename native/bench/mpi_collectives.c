// mpi_collectives: Open MPI's side of `npm run bench:collectives`, osu-style: for each collective and size,
// warm-up, then iterations timed with MPI_Wtime; every rank's average latency, averaged over the ranks
// (as the OSU micro-benchmarks report it). Built with mpicc by lib/bench/collectives.ts; rank 0 prints
// "<op> <bytes> <microseconds>" lines. argv: the sizes, then "--" and the iterations for each size.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The sum over the ranks of each rank's average latency (µs) of `op` at `bytes`.
static double Timed(const char* op, size_t bytes, int iters, char* src, char* dst) {
  int warmup = iters / 10 + 1;
  int count = (int)(bytes / sizeof(float));
  double start = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < warmup + iters; i++) {
    if (i == warmup) start = MPI_Wtime();
    if (strcmp(op, "barrier") == 0) MPI_Barrier(MPI_COMM_WORLD);
    else if (strcmp(op, "broadcast") == 0) MPI_Bcast(src, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    else if (strcmp(op, "allreduce") == 0) MPI_Allreduce(src, dst, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    else MPI_Allgather(src, (int)bytes, MPI_BYTE, dst, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
  }
  double mine = (MPI_Wtime() - start) / iters * 1e6, sum = 0;
  MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  return sum;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int split = 1;
  while (split < argc && strcmp(argv[split], "--") != 0) split++;
  int sizes = split - 1;
  size_t largest = 8;
  for (int s = 0; s < sizes; s++) {
    size_t b = strtoull(argv[1 + s], NULL, 10);
    if (b > largest) largest = b;
  }
  char* src = calloc(largest, 1);
  char* dst = calloc(largest * (size_t)size, 1);
  const char* ops[] = {"barrier", "broadcast", "allreduce", "allgather"};
  for (int o = 0; o < 4; o++) {
    for (int s = 0; s < sizes; s++) {
      size_t bytes = strtoull(argv[1 + s], NULL, 10);
      int iters = atoi(argv[split + 1 + s]);
      double sum = Timed(ops[o], bytes, iters, src, dst);
      if (rank == 0) printf("%s %zu %.3f\n", ops[o], o == 0 ? (size_t)0 : bytes, sum / size);
      fflush(stdout);
      if (o == 0) break;  // a barrier has no size
    }
  }
  free(src);
  free(dst);
  MPI_Finalize();
  return 0;
}
