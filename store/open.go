package store

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Log attribute keys.
const (
	logPath    = "path"
	logErr     = "err"
	logMovedTo = "moved_to"
	logCount   = "count"
	logBefore  = "size_before"
	logAfter   = "size_after"
	logSeq     = "seq"
)

const (
	defaultLockTimeout = time.Second
	// minMaxBytes keeps a cap from being so small that the reserve and
	// bbolt's own growth steps leave no room for tickets.
	minMaxBytes = 256 << 10

	// Compaction at Open: only when at least half the file is free space,
	// the file is worth shrinking, and the live data is small enough to copy
	// in a few seconds on a gateway's flash.
	compactMinFile = 1 << 20
	compactMaxLive = 64 << 20
	compactTxBytes = 4 << 20
)

// errCorrupt marks a file found unusable by the cheap checks at Open.
var errCorrupt = errors.New("store file is corrupt")

// errPanicked marks a bbolt panic inside bolt.Open. bbolt takes the file
// lock before it reads a page, so we held the lock; and its memory map,
// which bbolt could not unmap, keeps the open file — and so the lock —
// alive. No other process can hold it: moving the file aside is safe
// without locking again (which would fail against our own leaked lock).
var errPanicked = errors.New("bbolt panicked opening it")

// Open opens (or creates) the store at opts.Path. A read-write Open takes
// the file's lock (waiting at most LockTimeout, then ErrLocked), moves a
// corrupt file aside as <name>.corrupt-<UTC time> and starts a new one
// (recorded in Stats and in the new file), compacts a mostly-empty file,
// reconciles the sequence sidecar and starts the writer. It does not scan
// tickets: its cost does not grow with their number.
//
// The corruption check is deliberately cheap: bbolt's meta page checksums,
// the file being at least as long as its data, and the store's own meta
// bucket being readable. A full tx.Check reads every page (seconds on a big
// file) and is left to tests and offline tools.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("open store: %w: empty path", ErrInvalid)
	}
	if opts.MaxBytes < 0 || (opts.MaxBytes > 0 && opts.MaxBytes < minMaxBytes) {
		return nil, fmt.Errorf("open store: %w: max size %d bytes (0 for no cap, at least %d)", ErrInvalid, opts.MaxBytes, minMaxBytes)
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("open store: %w: negative retention %s", ErrInvalid, opts.Retention)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		opts:   opts,
		log:    opts.Logger.With("component", "store"),
		now:    opts.Now,
		encode: opts.EncodeCreate,
	}
	s.stats.Path = opts.Path
	s.stats.MaxBytes = opts.MaxBytes
	s.stats.ReadOnly = opts.ReadOnly
	if opts.MaxBytes > 0 {
		hard := int(min(opts.MaxBytes, math.MaxInt32)) // 32-bit: bbolt maps at most 2 GiB
		reserve := max(hard/16, 64<<10)
		s.hardMax, s.softMax = hard, hard-reserve
	}
	if opts.ReadOnly {
		if err := s.openReadOnly(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.openReadWrite(); err != nil {
		return nil, err
	}
	s.reqs = make(chan *request)
	s.closing = make(chan struct{})
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

// openInfo is what the cheap check reads from a file.
type openInfo struct {
	needInit       bool // a bucket or the schema mark is missing, or the mark is older
	seq            uint64
	corruptMovedTo string
	corruptAt      time.Time
	highBytes      int64 // bbolt's high-water mark in bytes
	fileBytes      int64
}

func (s *Store) boltOptions(readOnly bool, file **os.File) *bolt.Options {
	o := &bolt.Options{
		Timeout:  s.opts.LockTimeout,
		ReadOnly: readOnly,
		// The hashmap freelist stays fast on a fragmented file (months of
		// pruning); the file format is the same.
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			*file = f
			return f, err
		},
	}
	if s.hardMax > 0 {
		o.MaxSize = s.hardMax
	}
	return o
}

// boltOpen opens the file with bbolt. A panic inside bbolt (it asserts on
// some kinds of garbage) is turned into errCorrupt, and the file it had
// opened is closed so that its lock does not outlive the attempt.
func (s *Store) boltOpen(readOnly bool) (db *bolt.DB, file *os.File, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close()
			}
			db, file, err = nil, nil, fmt.Errorf("%w: %w: %v", errCorrupt, errPanicked, r)
		}
	}()
	db, err = bolt.Open(s.opts.Path, 0o600, s.boltOptions(readOnly, &file))
	return db, file, err
}

// check is the cheap corruption check, and reads what Open needs.
func check(db *bolt.DB, file *os.File) (info openInfo, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading it failed: %v", errCorrupt, r)
		}
	}()
	fi, err := file.Stat()
	if err != nil {
		return info, fmt.Errorf("stat store file: %w", err)
	}
	info.fileBytes = fi.Size()
	err = db.View(func(tx *bolt.Tx) error {
		info.highBytes = tx.Size()
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: file is %d bytes but its data reaches %d (truncated)", errCorrupt, fi.Size(), tx.Size())
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				info.needInit = true
			}
		}
		meta := tx.Bucket(bktMeta)
		if meta == nil {
			return nil
		}
		schema := meta.Get(metaSchema)
		switch v := u64Decode(schema); {
		case schema == nil:
			info.needInit = true
		case len(schema) != 8 || v == 0:
			return fmt.Errorf("%w: bad schema mark %x", errCorrupt, schema)
		case v > schemaVersion:
			return fmt.Errorf("%w: layout %d, this edge-agent knows up to %d: upgrade it, or move the file away", ErrSchema, v, schemaVersion)
		case v < schemaVersion:
			info.needInit = true // the mark is raised: an older edge-agent must then refuse the file
		}
		info.seq = u64Decode(meta.Get(metaSeq))
		info.corruptMovedTo = string(meta.Get(metaCorruptMovedTo))
		if b := meta.Get(metaCorruptAt); b != nil {
			_ = info.corruptAt.UnmarshalText(b)
		}
		return nil
	})
	return info, err
}

func isCorrupt(err error) bool {
	return errors.Is(err, errCorrupt) || errors.Is(err, berrors.ErrInvalid) ||
		errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch)
}

func lockedError(readOnly bool, err error) error {
	if readOnly {
		return fmt.Errorf("%w: another process (the edge-agent daemon?) holds it; while the daemon runs, ask it through the control socket (%v)", ErrLocked, err)
	}
	return fmt.Errorf("%w: another process (the edge-agent daemon?) holds it; stop that one first (%v)", ErrLocked, err)
}

// sameFile reports whether path still names the file we opened and locked.
// Another edge-agent compacting at start replaces the file by rename while
// holding the old one's lock; whoever was waiting on that lock would
// otherwise write into a file nobody will ever read again.
func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// openChecked opens the file and runs the cheap check, retrying when the
// file was replaced under us.
func (s *Store) openChecked(readOnly bool) (*bolt.DB, openInfo, error) {
	for attempt := 0; ; attempt++ {
		db, file, err := s.boltOpen(readOnly)
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, openInfo{}, lockedError(readOnly, err)
			}
			return nil, openInfo{}, err
		}
		if !sameFile(file, s.opts.Path) {
			_ = db.Close()
			if attempt < 3 {
				continue
			}
			return nil, openInfo{}, fmt.Errorf("store file %s keeps being replaced while opening", s.opts.Path)
		}
		info, err := check(db, file)
		if err != nil {
			_ = db.Close()
			return nil, openInfo{}, err
		}
		return db, info, nil
	}
}

func (s *Store) openReadOnly() error {
	if _, err := os.Stat(s.opts.Path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open store read-only: no store file at %s: %w", s.opts.Path, ErrNotFound)
	}
	db, info, err := s.openChecked(true)
	if err != nil {
		if isCorrupt(err) {
			return fmt.Errorf("open store %s read-only: it is corrupt (the daemon moves it aside when it starts): %w", s.opts.Path, err)
		}
		return fmt.Errorf("open store %s read-only: %w", s.opts.Path, err)
	}
	s.db = db
	floor := info.seq
	if sc, err := readSidecar(s.opts.Path + ".seq"); err == nil {
		floor = max(floor, sc)
	}
	s.seqFloor = floor
	s.highWater.Store(int64(floor))
	s.stats.CorruptMovedTo, s.stats.CorruptAt = info.corruptMovedTo, info.corruptAt
	return nil
}

func (s *Store) openReadWrite() error {
	var (
		db          *bolt.DB
		info        openInfo
		err         error
		movedTo     string
		movedAt     time.Time
		compactDone bool
	)
	_, statErr := os.Stat(s.opts.Path)
	created := errors.Is(statErr, os.ErrNotExist)
	for {
		db, info, err = s.openChecked(false)
		if err != nil && isCorrupt(err) && movedTo == "" {
			movedAt = s.now().UTC()
			movedTo, err = s.moveAside(movedAt, err)
			if err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("open store %s: %w", s.opts.Path, err)
		}
		if !compactDone && !info.needInit {
			compactDone = true
			if s.maybeCompact(db, info) {
				continue // reopen the compacted file, checks and all
			}
		}
		break
	}
	s.db = db
	if s.hardMax > 0 {
		// Grow in steps small against the cap: bbolt refuses a write when its
		// next growth step would pass MaxSize, so a 16 MiB step on a 64 MiB
		// cap would waste a quarter of it.
		db.AllocSize = min(max(s.hardMax/32, 32<<10), 16<<20)
		db.MaxSize = s.softMax
	}
	if movedTo != "" {
		info.corruptMovedTo, info.corruptAt = movedTo, movedAt
	}
	if info.needInit || movedTo != "" {
		if err := s.initBuckets(movedTo, movedAt); err != nil {
			_ = db.Close()
			return err
		}
	}
	if created || movedTo != "" {
		// A new file's directory entry must survive a power cut too.
		if err := syncDir(filepath.Dir(s.opts.Path)); err != nil {
			_ = db.Close()
			return fmt.Errorf("open store %s: %w", s.opts.Path, err)
		}
	}
	s.stats.CorruptMovedTo, s.stats.CorruptAt = info.corruptMovedTo, info.corruptAt
	if err := s.openSeq(info.seq); err != nil {
		_ = db.Close()
		return err
	}
	return nil
}

// initBuckets creates what is missing, raises an older schema mark, and
// records a corrupt file moved aside.
func (s *Store) initBuckets(movedTo string, movedAt time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		if u64Decode(meta.Get(metaSchema)) < schemaVersion {
			// A new file, or an older layout this one reads: from now on it
			// may hold records an older edge-agent cannot read.
			if err := meta.Put(metaSchema, u64(schemaVersion)); err != nil {
				return err
			}
		}
		if movedTo != "" {
			at, _ := movedAt.MarshalText()
			if err := meta.Put(metaCorruptMovedTo, []byte(movedTo)); err != nil {
				return err
			}
			if err := meta.Put(metaCorruptAt, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store %s: initialise: %w", s.opts.Path, err)
	}
	return nil
}

// openSeq reconciles the sequence sidecar with the database mark.
func (s *Store) openSeq(dbSeq uint64) error {
	path := s.opts.Path + ".seq"
	sc, err := openSidecar(path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.opts.Path, err)
	}
	if sc.corrupt {
		s.log.Warn("sequence sidecar unreadable; rewriting it from the database mark", logPath, path, logSeq, dbSeq)
	}
	floor := max(sc.seq, dbSeq)
	if sc.seq > dbSeq {
		// The database is behind: restored from an older copy, or new after a
		// corrupt file was moved aside. The sidecar keeps numbers unique.
		s.log.Warn("store sequence behind its sidecar (older or replaced file); continuing after the sidecar's mark",
			logPath, s.opts.Path, "db_seq", dbSeq, "sidecar_seq", sc.seq)
	}
	if sc.corrupt || sc.seq < floor || sc.created {
		if err := sc.write(floor); err != nil {
			_ = sc.close()
			return fmt.Errorf("open store %s: %w", s.opts.Path, err)
		}
	}
	if sc.created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = sc.close()
			return fmt.Errorf("open store %s: %w", s.opts.Path, err)
		}
	}
	s.seq = sc
	s.seqFloor = floor
	s.highWater.Store(int64(floor))
	return nil
}

// moveAside renames a corrupt file to <name>.corrupt-<UTC time>, holding
// its lock so that a file another process uses is never moved.
func (s *Store) moveAside(at time.Time, cause error) (string, error) {
	path := s.opts.Path
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("open store %s: corrupt (%v), and cannot open it to move it aside: %w", path, cause, err)
	}
	defer f.Close()
	if !errors.Is(cause, errPanicked) {
		if err := lockFile(f, s.opts.LockTimeout); err != nil {
			return "", fmt.Errorf("open store %s: corrupt (%v), but %w", path, cause, lockedError(false, err))
		}
	}
	dst := path + ".corrupt-" + at.Format("20060102T150405Z")
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.corrupt-%s-%d", path, at.Format("20060102T150405Z"), i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("open store %s: corrupt (%v), and moving it aside failed: %w", path, cause, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("open store %s: %w", path, err)
	}
	s.log.Error("store file corrupt: moved aside, starting a new store; tickets in it are not lost from the file but no longer synced",
		logPath, path, logMovedTo, dst, logErr, cause)
	return dst, nil
}

// maybeCompact rewrites a mostly-free file into a compact copy and swaps it
// in by rename. It reports whether it did (db is then closed). Any failure
// leaves the original untouched and in use.
func (s *Store) maybeCompact(db *bolt.DB, info openInfo) bool {
	pageSize := int64(db.Info().PageSize)
	free := int64(db.Stats().FreePageN) * pageSize
	live := info.highBytes - free
	if info.fileBytes < compactMinFile || live > compactMaxLive || (info.fileBytes-live)*2 < info.fileBytes {
		return false
	}
	tmp := s.opts.Path + ".compact"
	_ = os.Remove(tmp) // a leftover of a crash mid-compaction: we hold the lock, it is ours
	fail := func(step string, err error) bool {
		_ = os.Remove(tmp)
		s.log.Warn("store compaction skipped", "step", step, logErr, err)
		return false
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: s.opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fail("create", err)
	}
	if err := bolt.Compact(dst, db, compactTxBytes); err != nil {
		_ = dst.Close()
		return fail("copy", err)
	}
	if err := dst.Close(); err != nil {
		return fail("close", err)
	}
	// Rename while still holding the old file's lock: see sameFile.
	if err := os.Rename(tmp, s.opts.Path); err != nil {
		return fail("rename", err)
	}
	if err := syncDir(filepath.Dir(s.opts.Path)); err != nil {
		s.log.Warn("store compaction: directory sync failed", logErr, err)
	}
	_ = db.Close()
	after := int64(0)
	if fi, err := os.Stat(s.opts.Path); err == nil {
		after = fi.Size()
	}
	s.log.Info("store compacted at start", logPath, s.opts.Path, logBefore, info.fileBytes, logAfter, after)
	return true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// wrapf wraps err with a short context, or returns nil.
func wrapf(context string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", context, err)
}
