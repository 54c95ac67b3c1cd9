/* libvrev: reverse tunnels wire-compatible with V2Ray. This umbrella header gives the whole
 * public API. See the individual headers for documentation and thread-safety rules. */
#ifndef VREV_H
#define VREV_H

#include "vrev/common.h"
#include "vrev/control.h"
#include "vrev/ctx.h"
#include "vrev/error.h"
#include "vrev/instance.h"
#include "vrev/mux.h"
#include "vrev/obs.h"
#include "vrev/stream.h"
#include "vrev/transport.h"
#include "vrev/tunnel.h"
#include "vrev/version.h"

#endif
