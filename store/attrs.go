package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// attrBuckets returns the attribute buckets of a write transaction.
//
// They keep bbolt's default packing (pages split half full). Packing them
// fuller was measured and is worse: each attribute round writes the fleet
// in batches of 500 devices spread over the whole key space (the detector
// collects devices by the hash of their nameplate), and a page split full
// overflows again at the next batch, leaving a full page and a nearly
// empty one each time: at 0.95 the leaf pages ended 25 % full and the file
// half as large again; half-full splits settle near 69 %
// (BenchmarkAttributesFootprint, fill=0.95 beside shipped).
func (s *Store) attrBuckets(w *wtx) (attrs, dirty *bolt.Bucket) {
	attrs, dirty = w.tx.Bucket(bktAttrs), w.tx.Bucket(bktDirty)
	if f := s.opts.attrFill; f != 0 {
		attrs.FillPercent, dirty.FillPercent = f, f
	}
	return attrs, dirty
}

func loadAttr(tx *bolt.Tx, nameplate string) (*attrRecord, error) {
	b := tx.Bucket(bktAttrs)
	if b == nil {
		return nil, nil
	}
	v := b.Get([]byte(nameplate))
	if v == nil {
		return nil, nil
	}
	rec, err := decodeAttrRecord(nameplate, v)
	if err != nil {
		return nil, fmt.Errorf("decode attributes of %s: %w", nameplate, err)
	}
	return &rec, nil
}

func (rec *attrRecord) public() agent.AttributeRecord {
	return agent.AttributeRecord{Attributes: rec.Attributes, Version: rec.Version}
}

// PutAttributes replaces the attribute record of each device with the
// given latest state and marks it dirty, in one durable, group-committed
// transaction. One record per device however often it is written: a month
// offline costs O(devices). A write identical to the stored record changes
// nothing (no new version, no commit), except that a record still in the
// JSON layout of schema 2 is rewritten in the binary one, keeping its
// version and dirty flag. A stored record that cannot be read is replaced.
func (s *Store) PutAttributes(ctx context.Context, attrs []agent.DeviceAttributes) error {
	payloads := make([][]byte, len(attrs))
	for i := range attrs {
		if err := checkName("nameplate", attrs[i].Nameplate); err != nil {
			return fmt.Errorf("put attributes %d: %w", i, err)
		}
		v, err := appendAttrPayload(nil, &attrs[i])
		if err != nil {
			return fmt.Errorf("put attributes of %s: %w", attrs[i].Nameplate, err)
		}
		payloads[i] = v
	}
	if len(attrs) == 0 {
		return nil
	}
	err := s.submit(ctx, true, func(w *wtx) error {
		b, dirty := s.attrBuckets(w)
		meta := w.tx.Bucket(bktMeta)
		ver := u64Decode(meta.Get(metaAttrVer))
		newVer := false
		for i := range attrs {
			name := attrs[i].Nameplate
			key := []byte(name)
			recVer, recDirty := ver+1, true
			switch same, oldVer, oldDirty := sameAttrs(b.Get(key), payloads[i]); same {
			case attrsSame:
				continue
			case attrsSameJSON:
				recVer, recDirty = oldVer, oldDirty // only the layout changes
			default:
				ver++
				newVer = true
			}
			// A new slice each: bbolt keeps what Put is given until commit.
			v := append(appendAttrHeader(make([]byte, 0, attrHeaderMax+len(payloads[i])), recVer, recDirty), payloads[i]...)
			if err := b.Put(key, v); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			if recDirty {
				if err := dirty.Put(key, []byte{}); err != nil {
					return fmt.Errorf("store attributes of %s: %w", name, err)
				}
			}
			w.wrote = true
		}
		if newVer {
			return meta.Put(metaAttrVer, u64(ver))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put attributes: %w", err)
	}
	return nil
}

// How a stored record compares with a new write.
const (
	attrsChanged  = iota // or none stored, or unreadable
	attrsSame            // binary, the same attributes
	attrsSameJSON        // JSON (schema 2), the same attributes
)

// sameAttrs compares the stored record old with the attributes part of a
// new one. A binary record is compared byte for byte without decoding;
// a JSON one is decoded and encoded.
func sameAttrs(old, payload []byte) (same int, version uint64, dirty bool) {
	if old == nil {
		return attrsChanged, 0, false
	}
	if h, ok := parseAttrHeader(old); ok {
		if string(h.payload) == string(payload) {
			return attrsSame, h.version, h.dirty
		}
		return attrsChanged, 0, false
	}
	if len(old) == 0 || old[0] != '{' {
		return attrsChanged, 0, false
	}
	rec, err := decodeJSONAttrRecord(old)
	if err != nil {
		return attrsChanged, 0, false
	}
	p, err := appendAttrPayload(nil, &rec.Attributes)
	if err != nil || string(p) != string(payload) {
		return attrsChanged, 0, false
	}
	return attrsSameJSON, rec.Version, rec.Dirty
}

// DirtyAttributes returns up to limit dirty records (limit <= 0: all), in
// nameplate order, walking the dirty index only.
func (s *Store) DirtyAttributes(limit int) ([]agent.AttributeRecord, error) {
	var out []agent.AttributeRecord
	err := s.view(func(tx *bolt.Tx) error {
		d := tx.Bucket(bktDirty)
		if d == nil {
			return nil
		}
		c := d.Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
			rec, err := loadAttr(tx, string(k))
			if err != nil {
				return err
			}
			if rec == nil {
				continue
			}
			out = append(out, rec.public())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dirty attributes: %w", err)
	}
	return out, nil
}

// MarkAttributesSynced clears the dirty flag of each record still at the
// given version (a record rewritten since stays dirty), durably. A record
// still in the JSON layout of schema 2 is rewritten in the binary one.
func (s *Store) MarkAttributesSynced(ctx context.Context, recs []agent.AttributeRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := s.submit(ctx, false, func(w *wtx) error {
		b, dirty := s.attrBuckets(w)
		for i := range recs {
			name := recs[i].Attributes.Nameplate
			key := []byte(name)
			v, err := syncedAttrRecord(name, b.Get(key), recs[i].Version)
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			if err := b.Put(key, v); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			if err := dirty.Delete(key); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			w.wrote = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark attributes synced: %w", err)
	}
	return nil
}

// syncedAttrRecord returns the stored record old with its dirty flag
// cleared, or nil when there is nothing to clear (no record, not dirty, or
// rewritten since version). A binary record is copied with one byte
// changed; a JSON one is decoded and written in the binary layout (or, if
// that layout refuses what it holds, as JSON again).
func syncedAttrRecord(name string, old []byte, version uint64) ([]byte, error) {
	if old == nil {
		return nil, nil
	}
	if h, ok := parseAttrHeader(old); ok {
		if !h.dirty || h.version != version {
			return nil, nil
		}
		v := append([]byte(nil), old...) // old is bbolt's memory map: read-only
		v[1] = 0
		return v, nil
	}
	rec, err := decodeAttrRecord(name, old)
	if err != nil {
		return nil, fmt.Errorf("decode attributes of %s: %w", name, err)
	}
	if !rec.Dirty || rec.Version != version {
		return nil, nil
	}
	rec.Dirty = false
	if v, err := appendAttrRecord(nil, &rec); err == nil {
		return v, nil
	}
	attrsJSON, err := json.Marshal(&rec.Attributes)
	if err == nil {
		var v []byte
		if v, err = json.Marshal(&jsonAttrRecord{Attributes: attrsJSON, Version: rec.Version}); err == nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("encode attributes of %s: %w", name, err)
}

// Attributes returns one device's record, and whether there is one.
func (s *Store) Attributes(nameplate string) (agent.AttributeRecord, bool, error) {
	var (
		out agent.AttributeRecord
		ok  bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := loadAttr(tx, nameplate)
		if err != nil || rec == nil {
			return err
		}
		out, ok = rec.public(), true
		return nil
	})
	if err != nil {
		return agent.AttributeRecord{}, false, fmt.Errorf("attributes of %s: %w", nameplate, err)
	}
	return out, ok, nil
}
