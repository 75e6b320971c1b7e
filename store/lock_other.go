//go:build !unix

package store

import (
	"os"
	"time"
)

// lockFile is a no-op where flock does not exist; the gateways run Linux.
func lockFile(*os.File, time.Duration) error { return nil }
