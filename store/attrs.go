package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// attrRecord is one device's coalesced attributes. Attributes stays raw
// JSON so that an unchanged write is detected by comparing bytes.
type attrRecord struct {
	Attributes json.RawMessage `json:"attributes"`
	// Version is given from one store-wide counter, so that a record
	// rewritten after a sync never matches a version seen before it.
	Version uint64 `json:"version"`
	Dirty   bool   `json:"dirty"`
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
	rec := new(attrRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("decode attributes of %s: %w", nameplate, err)
	}
	return rec, nil
}

func (rec *attrRecord) public() (agent.AttributeRecord, error) {
	var a agent.DeviceAttributes
	if err := json.Unmarshal(rec.Attributes, &a); err != nil {
		return agent.AttributeRecord{}, fmt.Errorf("decode attributes: %w", err)
	}
	return agent.AttributeRecord{Attributes: a, Version: rec.Version}, nil
}

// PutAttributes replaces the attribute record of each device with the
// given latest state and marks it dirty, in one durable, group-committed
// transaction. One record per device however often it is written: a month
// offline costs O(devices). A write identical to the stored record changes
// nothing (no new version, no commit).
func (s *Store) PutAttributes(ctx context.Context, attrs []agent.DeviceAttributes) error {
	vals := make([][]byte, len(attrs))
	for i := range attrs {
		if err := checkName("nameplate", attrs[i].Nameplate); err != nil {
			return fmt.Errorf("put attributes %d: %w", i, err)
		}
		v, err := json.Marshal(&attrs[i])
		if err != nil {
			return fmt.Errorf("put attributes of %s: %w", attrs[i].Nameplate, err)
		}
		vals[i] = v
	}
	if len(attrs) == 0 {
		return nil
	}
	err := s.submit(ctx, true, func(w *wtx) error {
		b, dirty, meta := w.tx.Bucket(bktAttrs), w.tx.Bucket(bktDirty), w.tx.Bucket(bktMeta)
		ver := u64Decode(meta.Get(metaAttrVer))
		for i := range attrs {
			name := attrs[i].Nameplate
			old, err := loadAttr(w.tx, name)
			if err != nil {
				return err
			}
			if old != nil && bytes.Equal(old.Attributes, vals[i]) {
				continue
			}
			ver++
			v, err := json.Marshal(&attrRecord{Attributes: vals[i], Version: ver, Dirty: true})
			if err != nil {
				return fmt.Errorf("encode attributes of %s: %w", name, err)
			}
			if err := b.Put([]byte(name), v); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			if err := dirty.Put([]byte(name), []byte{}); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			w.wrote = true
		}
		if w.wrote {
			return meta.Put(metaAttrVer, u64(ver))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put attributes: %w", err)
	}
	return nil
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
			pub, err := rec.public()
			if err != nil {
				return fmt.Errorf("attributes of %s: %w", k, err)
			}
			out = append(out, pub)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dirty attributes: %w", err)
	}
	return out, nil
}

// MarkAttributesSynced clears the dirty flag of each record still at the
// given version (a record rewritten since stays dirty), durably.
func (s *Store) MarkAttributesSynced(ctx context.Context, recs []agent.AttributeRecord) error {
	if len(recs) == 0 {
		return nil
	}
	err := s.submit(ctx, false, func(w *wtx) error {
		b, dirty := w.tx.Bucket(bktAttrs), w.tx.Bucket(bktDirty)
		for i := range recs {
			name := recs[i].Attributes.Nameplate
			old, err := loadAttr(w.tx, name)
			if err != nil {
				return err
			}
			if old == nil || !old.Dirty || old.Version != recs[i].Version {
				continue
			}
			old.Dirty = false
			v, err := json.Marshal(old)
			if err != nil {
				return fmt.Errorf("encode attributes of %s: %w", name, err)
			}
			if err := b.Put([]byte(name), v); err != nil {
				return fmt.Errorf("store attributes of %s: %w", name, err)
			}
			if err := dirty.Delete([]byte(name)); err != nil {
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
		out, err = rec.public()
		ok = err == nil
		return err
	})
	if err != nil {
		return agent.AttributeRecord{}, false, fmt.Errorf("attributes of %s: %w", nameplate, err)
	}
	return out, ok, nil
}
