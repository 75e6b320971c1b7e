package m2m

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCAFile returns the system's root certificates plus the PEM
// certificates of path (EDGE_M2M_CA_FILE is an extra CA, not a
// replacement). Where the system pool cannot be read, the pool holds the
// file's certificates alone. A file without a certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA file %s: %w: no PEM certificate in it", path, ErrConfig)
	}
	return pool, nil
}
