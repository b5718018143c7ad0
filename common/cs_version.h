/* cs_version.h - the engine version mixed into every job key.
 *
 * A job key is SHA-256(canonical job config || CS_ENGINE_VERSION). Bump this string whenever a
 * change of the engine (worker/) can change a result for the same config: every key changes with
 * it, so results cached by an older engine are not reused by mistake.
 */
#ifndef CS_COMMON_CS_VERSION_H
#define CS_COMMON_CS_VERSION_H

#define CS_ENGINE_VERSION "calsweep-engine/0.1.0"

#endif
