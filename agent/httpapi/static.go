package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// The page is plain files embedded in the binary: no build step, no CDN, no
// external font (a gateway is often offline).
//
//go:embed web
var webFiles embed.FS

// pageCSP allows nothing from elsewhere: scripts, styles and fetches come from
// this server only; inline SVG is drawn through the DOM.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// assets are the files of web/, read once at start.
var assets = func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[path.Base(p)] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("httpapi: embedded page: " + err.Error())
	}
	return out
}()

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := assets[name]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "no such file: "+name)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	// Revalidate every time (cheap with the ETag): a new binary's page must
	// not run with the old script.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Content-Security-Policy", pageCSP)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) { serveAsset(w, r, "index.html") }

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
		return
	}
	serveAsset(w, r, name)
}
