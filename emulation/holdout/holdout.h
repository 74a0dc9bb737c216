/* holdout.h: the crc32 hold-out workload of the cycle model (emulation/holdout, docs/emulation.md). */
#ifndef HOLDOUT_H
#define HOLDOUT_H

int ho_rand(void);
void ho_srand(unsigned int seed);

#endif
