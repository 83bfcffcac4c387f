package features

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Journal is the decision log's write-ahead file on the embedded store:
// an offer's decision is appended to it and synced (one fdatasync for
// every decision waiting at that moment: a group commit) before the offer
// is answered, and reaches the bbolt file later, in the log's ordinary
// batches. A sync of an appended file costs a fraction of a bbolt commit,
// which rewrites the B+tree pages it touched and syncs twice.
//
// The journal is a directory of segments, each a run of frames (the
// record's length as a uvarint, its CRC-32C, the record in the decision
// codec). Writes go to the newest segment; past segmentSize a new one is
// started. A segment is preallocated to segmentSize when started, so that
// a sync after a write has only the data to write, not the file's new
// size; its unwritten tail reads as zeros, and a zero length ends it. A segment is removed once every record in it is in the bbolt
// file (Release). At start the records of the segments left by a crash are
// read (Records) and written to the file before anything else; a segment
// torn by a crash mid-write is read up to the tear, which holds only
// records that were never acknowledged.
//
// Append, Sync and Close are called by one goroutine at a time (the log's
// journal writer); Release may be called concurrently with them.
type Journal struct {
	dir         string
	segmentSize int64

	f    *os.File // the segment written; nil until the first Append, or after a failed write
	size int64    // how much of it is written (it may be preallocated further)
	buf  []byte
	// syncEvery, when not 0, makes Append write without syncing; Sync is
	// then called that often.
	syncEvery time.Duration
	dirty     bool // written since the last sync

	mu   sync.Mutex
	segs []uint64 // every segment on disk, oldest first
	cur  uint64   // the segment written (f's); 0 when none
}

// segmentSize is when a journal segment is closed and a new one started.
const segmentSize = 4 << 20

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// SyncEvery makes Append only write (the record survives the process's
// death, not the machine's), leaving the sync to Sync, to be called every
// d. Call it before the first Append.
func (j *Journal) SyncEvery(d time.Duration) { j.syncEvery = d }

// Sync syncs what Append wrote since the last sync. A failure is reported
// and the next Append starts a new segment.
func (j *Journal) Sync() error {
	if !j.dirty || j.f == nil {
		return nil
	}
	j.dirty = false
	if err := fdatasync(j.f); err != nil {
		j.drop()
		return &StorageError{Op: "sync journal", Where: j.dir, Err: err}
	}
	return nil
}

// drop closes the segment written after a failure; the next Append
// starts a new one.
func (j *Journal) drop() {
	_ = j.f.Close() // the failure is the error to report
	j.f = nil
	j.mu.Lock()
	j.cur = 0
	j.mu.Unlock()
}

// OpenJournal opens the journal in dir, creating dir when missing. The
// segments found there are kept for Records and Release; new records go
// to a new segment.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &StorageError{Op: "open journal", Where: dir, Err: err}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &StorageError{Op: "open journal", Where: dir, Err: err}
	}
	j := &Journal{dir: dir, segmentSize: segmentSize}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("features: journal %s: %s is not a segment (want <hex>.wal)", dir, e.Name())
		}
		j.segs = append(j.segs, seq)
	}
	slices.Sort(j.segs)
	return j, nil
}

func (j *Journal) path(seq uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%016x.wal", seq))
}

// Records returns the records of the segments on disk, oldest first, and
// the segment after them: Release(next) removes them once they are
// written elsewhere. Call it before the first Append.
func (j *Journal) Records() (recs []DecisionRecord, next uint64, err error) {
	j.mu.Lock()
	segs := slices.Clone(j.segs)
	j.mu.Unlock()
	for _, seq := range segs {
		got, err := readSegment(j.path(seq))
		if err != nil {
			return nil, 0, err
		}
		recs = append(recs, got...)
	}
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	return recs, next, nil
}

// readSegment reads a segment's frames up to its end or the first torn or
// damaged frame.
func readSegment(path string) ([]DecisionRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &StorageError{Op: "read journal", Where: path, Err: err}
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var recs []DecisionRecord
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil || n == 0 {
			return recs, nil // the end, a tear in the length, or the preallocated tail
		}
		if n > 1<<20 {
			return recs, nil // no record is this long: a damaged length
		}
		frame := make([]byte, 4+n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return recs, nil
		}
		if crc32.Checksum(frame[4:], journalCRC) != binary.LittleEndian.Uint32(frame) {
			return recs, nil
		}
		var d DecisionRecord
		if err := decodeDecision(frame[4:], &d); err != nil {
			return nil, fmt.Errorf("features: journal %s: a frame with a good checksum does not decode: %w", path, err)
		}
		recs = append(recs, d)
	}
}

// Append writes recs to the journal with one write and one fdatasync and
// returns the segment that holds them. On an error nothing of recs counts
// as written, and the next Append starts a new segment (a write that
// failed halfway leaves a tear, read up to at start).
func (j *Journal) Append(recs []*DecisionRecord) (seg uint64, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	j.buf = j.buf[:0]
	for _, r := range recs {
		raw, err := encodeDecision(r)
		if err != nil {
			return 0, err
		}
		j.buf = binary.AppendUvarint(j.buf, uint64(len(raw)))
		j.buf = binary.LittleEndian.AppendUint32(j.buf, crc32.Checksum(raw, journalCRC))
		j.buf = append(j.buf, raw...)
	}
	if j.f == nil || j.size >= j.segmentSize {
		if err := j.rotate(); err != nil {
			return 0, err
		}
	}
	j.mu.Lock()
	seg = j.cur
	j.mu.Unlock()
	n, err := j.f.WriteAt(j.buf, j.size)
	if err == nil && j.syncEvery == 0 {
		err = fdatasync(j.f)
	}
	j.dirty = j.syncEvery > 0
	if err != nil {
		j.drop()
		return 0, &StorageError{Op: "write journal", Where: j.path(seg), Err: err}
	}
	j.size += int64(n)
	return seg, nil
}

// rotate closes the segment written and starts the next, syncing the
// directory so that the new file's name survives a crash.
func (j *Journal) rotate() error {
	if j.f != nil {
		err := j.Sync()
		if j.f != nil {
			err = errors.Join(err, j.f.Close())
		}
		j.f = nil
		j.mu.Lock()
		j.cur = 0
		j.mu.Unlock()
		if err != nil {
			return &StorageError{Op: "close journal segment", Where: j.dir, Err: err}
		}
	}
	j.mu.Lock()
	seq := uint64(1)
	if len(j.segs) > 0 {
		seq = j.segs[len(j.segs)-1] + 1
	}
	j.mu.Unlock()
	f, err := os.OpenFile(j.path(seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return &StorageError{Op: "start journal segment", Where: j.path(seq), Err: err}
	}
	// Preallocated and synced once here, rather than grown by every
	// Append; where the file system cannot preallocate, it grows.
	if preallocate(f, j.segmentSize) == nil {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			_ = os.Remove(j.path(seq))
			return &StorageError{Op: "start journal segment", Where: j.path(seq), Err: err}
		}
	}
	if err := syncDir(j.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(j.path(seq))
		return &StorageError{Op: "start journal segment", Where: j.dir, Err: err}
	}
	j.mu.Lock()
	j.segs, j.cur = append(j.segs, seq), seq
	j.mu.Unlock()
	j.f, j.size = f, 0
	return nil
}

// Release removes the segments before seg: every record in them is
// written elsewhere. The segment written is never removed.
func (j *Journal) Release(seg uint64) error {
	j.mu.Lock()
	var gone []uint64
	j.segs = slices.DeleteFunc(j.segs, func(s uint64) bool {
		if s < seg && s != j.cur {
			gone = append(gone, s)
			return true
		}
		return false
	})
	j.mu.Unlock()
	var errs []error
	for _, s := range gone {
		if err := os.Remove(j.path(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Segments returns how many segments are on disk.
func (j *Journal) Segments() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.segs)
}

// Close closes the segment written. With clean set (every record is
// written elsewhere) it removes every segment.
func (j *Journal) Close(clean bool) error {
	var err error
	if j.f != nil {
		err = errors.Join(j.Sync(), j.f.Close())
		j.f = nil
	}
	j.mu.Lock()
	j.cur = 0
	j.mu.Unlock()
	if clean && err == nil {
		j.mu.Lock()
		next := uint64(0)
		if len(j.segs) > 0 {
			next = j.segs[len(j.segs)-1] + 1
		}
		j.mu.Unlock()
		err = j.Release(next)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
