/* The limits every layer of sgm shares, defined once (exported to Python by the
 * extension modules as NONCE_SPACE and MAX_MIDSTATES). */
#ifndef SGM_LIMITS_H
#define SGM_LIMITS_H

#include <stdint.h>

/* nonces of one midstate: the 32-bit header nonce */
#define SGM_NONCE_SPACE (((uint64_t)1) << 32)
/* midstate ids (extranonce2 x version variants) the queue enumerates for one job */
#define SGM_MAX_MIDSTATES ((uint64_t)0xFFFFFFFFu)

#endif
