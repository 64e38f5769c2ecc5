package sqlstore

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect is what differs between the SQL backends. Everything else (the
// queries, the upserts, which both write as INSERT ... ON CONFLICT ... DO
// UPDATE ... RETURNING, and the revision logic) is shared.
type Dialect struct {
	// Name picks the embedded migrations: migrations/<Name>/NNNN_*.sql.
	Name string
	// Placeholder returns the n-th (1-based) bind parameter: "?" or "$n".
	// Queries are written with "?" and rebound once when the Store opens.
	Placeholder func(n int) string
	// TimeType is the column type of times outside the migrations
	// (schema_migrations.applied_at).
	TimeType string
	// BindTime turns a UTC, microsecond time into a driver value: an
	// RFC 3339 string of fixed width for SQLite (so text order is time
	// order), the time itself for Postgres.
	BindTime func(time.Time) any

	// Isolation is the isolation level of Update's transactions.
	Isolation sql.IsolationLevel
	// ForUpdate is appended to the read of a row that Put or Delete is
	// about to change (" FOR UPDATE" on Postgres).
	ForUpdate string
	// MigrationLock, if set, runs first in the migration transaction so
	// that two processes opening the same database migrate one at a time.
	MigrationLock string
	// SerializeWrites makes Update take an in-process lock, so writers of
	// a single-writer database queue in Go instead of polling the file
	// lock.
	SerializeWrites bool
	// PrepareInTx prepares each statement once per transaction. Worth it
	// where preparing is local and not cached (SQLite); not where it costs
	// a round trip and the driver caches anyway (pgx).
	PrepareInTx bool

	// IsUniqueViolation reports a unique or primary key violation.
	IsUniqueViolation func(error) bool
	// IsRetryable reports an error after which the whole transaction
	// should run again (serialization failure, deadlock).
	IsRetryable func(error) bool
	// IsBusy reports that the database stayed locked past its timeout.
	IsBusy func(error) bool
	// MaxAttempts bounds how often Update runs fn; 0 means 1.
	MaxAttempts int
}

// QuestionMark is the "?" placeholder style (SQLite, MySQL).
func QuestionMark(int) string { return "?" }

// Dollar is the "$n" placeholder style (Postgres).
func Dollar(n int) string { return "$" + strconv.Itoa(n) }

// rebind rewrites the "?" placeholders of q in the dialect's style. Our
// queries have no "?" inside literals, so no quoting rules are needed.
func (d *Dialect) rebind(q string) string {
	if d.Placeholder == nil || d.Placeholder(1) == "?" {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString(d.Placeholder(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (d *Dialect) check() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("sqlstore: dialect has no Name")
	case d.Placeholder == nil:
		return fmt.Errorf("sqlstore: dialect %s has no Placeholder", d.Name)
	case d.BindTime == nil:
		return fmt.Errorf("sqlstore: dialect %s has no BindTime", d.Name)
	case d.TimeType == "":
		return fmt.Errorf("sqlstore: dialect %s has no TimeType", d.Name)
	}
	return nil
}

func (d *Dialect) uniqueViolation(err error) bool {
	return err != nil && d.IsUniqueViolation != nil && d.IsUniqueViolation(err)
}

func (d *Dialect) retryable(err error) bool {
	return err != nil && d.IsRetryable != nil && d.IsRetryable(err)
}

func (d *Dialect) busy(err error) bool {
	return err != nil && d.IsBusy != nil && d.IsBusy(err)
}

// TimeText is the SQLite encoding of a time: RFC 3339 in UTC with exactly
// six fractional digits, so that comparing the text compares the times.
const TimeText = "2006-01-02T15:04:05.000000Z"

// BindTimeText is BindTime for databases that store times as text.
func BindTimeText(t time.Time) any { return t.UTC().Format(TimeText) }

// BindTimeValue is BindTime for databases with a timestamp type.
func BindTimeValue(t time.Time) any { return t.UTC() }

// normTime is how every stored time is cut: UTC, microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeScan scans a time stored either way into *T (UTC). NULL leaves the
// zero time.
type timeScan struct{ t *time.Time }

func (s timeScan) Scan(src any) error {
	t, ok, err := parseTime(src)
	if err != nil {
		return err
	}
	if ok {
		*s.t = t
	} else {
		*s.t = time.Time{}
	}
	return nil
}

// nullTimeScan scans a nullable time into **T: nil for NULL.
type nullTimeScan struct{ t **time.Time }

func (s nullTimeScan) Scan(src any) error {
	t, ok, err := parseTime(src)
	if err != nil {
		return err
	}
	if ok {
		*s.t = &t
	} else {
		*s.t = nil
	}
	return nil
}

func parseTime(src any) (time.Time, bool, error) {
	switch v := src.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return v.UTC(), true, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t.UTC(), err == nil, err
	case []byte:
		t, err := time.Parse(time.RFC3339Nano, string(v))
		return t.UTC(), err == nil, err
	}
	return time.Time{}, false, fmt.Errorf("sqlstore: cannot scan %T into a time", src)
}
