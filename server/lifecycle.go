package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-mesh/rhizome"
	"github.com/rhizome-mesh/rhizome/connector"
	_ "github.com/rhizome-mesh/rhizome/connector/all" // register every connector
	streamconn "github.com/rhizome-mesh/rhizome/connector/stream"
	"github.com/rhizome-mesh/rhizome/examples"
	"github.com/rhizome-mesh/rhizome/jobs"
	"github.com/rhizome-mesh/rhizome/keys"
	"github.com/rhizome-mesh/rhizome/metastore"
	"github.com/rhizome-mesh/rhizome/objstore"
	"github.com/rhizome-mesh/rhizome/pipeline"
	"github.com/rhizome-mesh/rhizome/retention"
	"github.com/rhizome-mesh/rhizome/stream"
	"github.com/rhizome-mesh/rhizome/table"
)

// lifecycle is the data half of `rhizome up`: the table catalog, the
// pipeline and the scheduler that runs it.
type lifecycle struct {
	store  metastore.Store
	tables *table.Catalog
	jobs   *jobs.Scheduler
	pipe   *pipeline.Pipeline
	cfg    Config

	spool   *stream.Spool // nil in a worker-only process: pushes land on the API node
	flusher *stream.Flusher

	ring *keys.Keyring

	monitor *monitoring // alerts and SLOs (alerts.go)

	broker    *Broker             // told of each publish (changes.go)
	retention *retention.Enforcer // retention.go

	stopTicker context.CancelFunc
	tickerDone chan struct{}
}

// sqlBacked is what the SQL metastores offer beyond metastore.Store: the
// database the table catalog and the job queue share.
type sqlBacked interface {
	DB() *sql.DB
}

func startLifecycle(ctx context.Context, cfg Config, store metastore.Store, reg *prometheus.Registry) (*lifecycle, error) {
	sb, ok := store.(sqlBacked)
	if !ok {
		return nil, rhizome.Errorf(rhizome.EInternal, "the metastore does not expose its database")
	}
	dialect := "sqlite"
	if cfg.MetastoreURL != "" && (hasPrefix(cfg.MetastoreURL, "postgres://") || hasPrefix(cfg.MetastoreURL, "postgresql://")) {
		dialect = "postgres"
	}
	warehouse := cfg.Warehouse
	if warehouse == "" {
		abs, err := filepath.Abs(filepath.Join(cfg.DataDir, "lake"))
		if err != nil {
			return nil, rhizome.Wrap(err, "locating the lake")
		}
		warehouse = "file://" + abs
	}
	props, objectStorage := s3Props(cfg.Getenv)
	ring, err := openKeyring(ctx, cfg)
	if err != nil {
		return nil, err
	}
	tables, err := table.Open(ctx, table.Options{DB: sb.DB(), Dialect: dialect, Warehouse: warehouse, Props: props, Clock: cfg.Clock, Keys: ring})
	if err != nil {
		return nil, rhizome.Wrap(err, "opening the table catalog")
	}
	lc := &lifecycle{store: store, tables: tables, cfg: cfg, ring: ring, broker: NewBroker()}
	if lc.monitor, err = startMonitoring(cfg, store, tables, reg); err != nil {
		return nil, err
	}
	if !cfg.WorkerOnly {
		if lc.spool, err = stream.OpenWith(filepath.Join(cfg.DataDir, "spool"), cfg.Clock, lc.publishedBy(ctx)); err != nil {
			return nil, rhizome.Wrap(err, "opening the push spool")
		}
	}
	base := cfg.FilesDir
	if base == "" {
		base, _ = os.Getwd()
	}
	lc.pipe = pipeline.New(pipeline.Options{Store: store, Tables: tables, WorkDir: filepath.Join(cfg.DataDir, "work"),
		BaseDir: base, Secrets: secrets(cfg), Clock: cfg.Clock, Logger: cfg.Logger, Warehouse: warehouse, ObjectStorage: objectStorage, Objects: objects(props, objectStorage),
		Spool: lc.spool, QuarantineDir: filepath.Join(cfg.DataDir, "quarantine"), Alerts: lc.monitor.alerts})
	lc.jobs, err = jobs.New(ctx, jobs.Options{Store: store, Dialect: dialect, DB: sb.DB(), PostgresURL: pgURL(cfg, dialect),
		Runner: lc.run, Clock: cfg.Clock, Logger: cfg.Logger, Workers: cfg.Workers, Queue: true, Registry: reg,
		TimeoutFor: lc.timeoutOf,
		OnFinish:   lc.monitor.runFinished, // run_failed alerts
		// A run left "running" by a dead process: remove its work dir and
		// the files it uploaded without committing.
		OnRecover: func(r *rhizome.Run) {
			lc.monitor.runFinished(r)
			if err := lc.pipe.Recover(context.WithoutCancel(ctx), r); err != nil {
				cfg.Logger.Warn("recovering a dead run", "run", r.ID, "err", err)
			}
		}})
	if err != nil {
		return nil, rhizome.Wrap(err, "starting the scheduler")
	}
	if err := lc.jobs.Start(ctx); err != nil {
		return nil, rhizome.Wrap(err, "starting the scheduler")
	}
	if lc.spool != nil {
		lc.flusher = stream.NewFlusher(lc.spool, func(ctx context.Context, productID, key string) error {
			err := enqueuePush(ctx, lc.jobs, productID, key)
			if err != nil {
				cfg.Logger.Warn("queueing a push run", "product", productID, "err", err)
			}
			return err
		}, cfg.Clock)
		lc.flusher.Start(context.WithoutCancel(ctx))
	}
	lc.refreshSchedules(ctx)
	// Manifests change through other processes too: refresh the schedules
	// now and then, not only after this process's applies.
	tickCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lc.stopTicker = cancel
	lc.tickerDone = make(chan struct{})
	go func() {
		defer close(lc.tickerDone)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case <-t.C:
				lc.refreshSchedules(tickCtx)
			}
		}
	}()
	return lc, nil
}

// s3Props are the Iceberg FileIO properties for S3-compatible storage, from
// the environment; ok says whether any object storage is configured.
func s3Props(getenv func(string) string) (map[string]string, bool) {
	props := map[string]string{}
	for env, prop := range map[string]string{
		"RHIZOME_S3_ENDPOINT": "s3.endpoint", "RHIZOME_S3_REGION": "s3.region",
		"AWS_ACCESS_KEY_ID": "s3.access-key-id", "AWS_SECRET_ACCESS_KEY": "s3.secret-access-key",
	} {
		if v := getenv(env); v != "" {
			props[prop] = v
		}
	}
	if props["s3.endpoint"] != "" {
		props["s3.force-virtual-addressing"] = "false" // S3-compatible servers want path style
	}
	return props, props["s3.endpoint"] != "" || props["s3.access-key-id"] != ""
}

// openKeyring opens the data keys of encrypted tables (DataDir/keys),
// wrapped by the master key: --master-key, $RHIZOME_MASTER_KEY, or a local
// key created once in DataDir/master.key (mode 0600: whoever reads it reads
// every encrypted table).
func openKeyring(ctx context.Context, cfg Config) (*keys.Keyring, error) {
	url := cfg.MasterKeyURL
	if url == "" {
		url = cfg.Getenv("RHIZOME_MASTER_KEY")
	}
	if url == "" {
		var err error
		if url, err = keys.LocalMasterKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	store := keys.NewFileStore(filepath.Join(cfg.DataDir, "keys"))
	ring, err := keys.Open(ctx, url, store)
	if err != nil {
		return nil, rhizome.Wrap(err, "opening the keyring")
	}
	// Fail at start, not at the first read, when the master key cannot
	// unwrap the data keys already there (e.g. after a rotation).
	if prods, err := store.Products(ctx); err == nil && len(prods) > 0 {
		if wks, err := store.Get(ctx, prods[0]); err == nil && len(wks) > 0 {
			if _, err := ring.KeyByVersion(ctx, prods[0], wks[0].Version); err != nil {
				ring.Close()
				return nil, rhizome.Wrap(err, "the master key does not open the data keys in %s", filepath.Join(cfg.DataDir, "keys"))
			}
		}
	}
	return ring, nil
}

// objects reads s3:// input files, when object storage is configured.
func objects(props map[string]string, ok bool) connector.ObjectFetcher {
	if !ok {
		return nil
	}
	return objstore.New(props)
}

// secrets resolves connector secret references: "env:RHIZOME_SECRET_X"
// reads that variable (no other variable of the server is a secret), and
// "file:/path" reads a file under DataDir/secrets.
func secrets(cfg Config) connector.SecretResolver {
	return connector.Secrets{
		Env:  connector.EnvSecrets{Getenv: cfg.Getenv, Prefix: "RHIZOME_SECRET_"},
		File: connector.FileSecrets{Dir: filepath.Join(cfg.DataDir, "secrets")},
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func pgURL(cfg Config, dialect string) string {
	if dialect == "postgres" {
		return cfg.MetastoreURL
	}
	return ""
}

func (lc *lifecycle) stop() {
	lc.stopTicker()
	<-lc.tickerDone
	if lc.flusher != nil {
		lc.flusher.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lc.jobs.Stop(ctx); err != nil {
		lc.cfg.Logger.Warn("stopping the scheduler", "err", err)
	}
	lc.monitor.close(lc.cfg.Logger)
	if err := lc.ring.Close(); err != nil {
		lc.cfg.Logger.Warn("closing the keyring", "err", err)
	}
}

// run is the jobs.Runner: the pipeline, then the products downstream.
func (lc *lifecycle) run(ctx context.Context, run *rhizome.Run, logf func(level, msg string)) (jobs.RunResult, error) {
	if run.Trigger == rhizome.TriggerPush && lc.spool != nil && lc.nothingPushed(ctx, run.ProductID) {
		logf("info", "no pushed batches are pending: an earlier run committed them")
		return jobs.RunResult{}, nil
	}
	if run.Trigger != rhizome.TriggerPush && lc.spool != nil && lc.onlyStreams(ctx, run.ProductID) && lc.nothingPushed(ctx, run.ProductID) {
		logf("info", "no pushed batches are pending: nothing to publish")
		return jobs.RunResult{}, nil
	}
	res, err := lc.pipe.Run(ctx, run, logf)
	if lc.spool != nil {
		if err != nil {
			if rerr := lc.spool.Release(run.ID); rerr != nil {
				logf("warn", "handing the pushed batches back: "+rerr.Error())
			}
		} else if cerr := lc.spool.Commit(run.ID); cerr != nil {
			// Published already: failing the run would publish them twice.
			logf("error", "committing the pushed batches: "+cerr.Error())
		}
	}
	if err != nil {
		return res, err
	}
	lc.broker.Notify(run.ProductID)
	for _, id := range lc.downstream(ctx, run.ProductID) {
		// A run of it that is still queued will read this publish too.
		if queued, _, err := lc.store.ListRuns(ctx, metastore.RunListOptions{ProductID: id, State: rhizome.RunQueued, Limit: 1}); err == nil && len(queued) > 0 {
			logf("info", "downstream "+id+" already has a queued run")
			continue
		}
		if _, err := lc.jobs.Enqueue(ctx, jobs.Request{ProductID: id, Trigger: rhizome.TriggerUpstream, Actor: "rhizome"}); err != nil {
			logf("warn", fmt.Sprintf("triggering %s: %v", id, err))
		} else {
			logf("info", "triggered downstream "+id)
		}
	}
	return res, nil
}

// products calls fn for every product manifest with a pipeline.
func (lc *lifecycle) products(ctx context.Context, fn func(*rhizome.DataProduct)) {
	after := ""
	for {
		page, err := lc.store.List(ctx, metastore.ListOptions{Kind: rhizome.KindDataProduct, After: after, Limit: 1000})
		if err != nil {
			lc.cfg.Logger.Warn("listing products", "err", err)
			return
		}
		for _, o := range page.Items {
			var dp rhizome.DataProduct
			if json.Unmarshal(o.Body, &dp) == nil && dp.Pipeline != nil {
				fn(&dp)
			}
		}
		if page.Next == "" {
			return
		}
		after = page.Next
	}
}

// downstream lists the products that read id and whose every upstream
// product has published: one that still waits for another input is
// triggered when that input publishes.
func (lc *lifecycle) downstream(ctx context.Context, id string) []string {
	var out []string
	lc.products(ctx, func(dp *rhizome.DataProduct) {
		reads := false
		for _, p := range dp.InputPorts {
			reads = reads || p.Product == id
		}
		if reads && lc.inputsPublished(ctx, dp) {
			out = append(out, dp.ID)
		}
	})
	return out
}

func (lc *lifecycle) inputsPublished(ctx context.Context, dp *rhizome.DataProduct) bool {
	for _, p := range dp.InputPorts {
		if p.Product == "" {
			continue
		}
		v := p.Version
		if v == "" {
			o, err := lc.store.Get(ctx, rhizome.KindDataProduct, p.Product)
			if err != nil {
				return false
			}
			var up rhizome.DataProduct
			_ = json.Unmarshal(o.Body, &up)
			v = up.CurrentVersion
		}
		if _, err := lc.tables.Current(ctx, table.RefFor(p.Product, v)); err != nil {
			return false
		}
	}
	return true
}

// publishedBy says whether a run committed a snapshot of its product's
// current table (its run id is in the snapshot's properties).
func (lc *lifecycle) publishedBy(ctx context.Context) func(productID, runID string) bool {
	return func(productID, runID string) bool {
		o, err := lc.store.Get(ctx, rhizome.KindDataProduct, productID)
		if err != nil {
			return false
		}
		var dp rhizome.DataProduct
		if json.Unmarshal(o.Body, &dp) != nil {
			return false
		}
		snaps, err := lc.tables.Snapshots(ctx, table.RefFor(productID, dp.CurrentVersion))
		if err != nil {
			return false
		}
		for _, s := range snaps {
			if s.Properties["run-id"] == runID {
				return true
			}
		}
		return false
	}
}

// timeoutOf is a product's run timeout: pipeline.timeout, else its
// infrastructure's orchestration.timeout (the guide's "4 hours").
func (lc *lifecycle) timeoutOf(ctx context.Context, id string) time.Duration {
	o, err := lc.store.Get(ctx, rhizome.KindDataProduct, id)
	if err != nil {
		return 0
	}
	var dp rhizome.DataProduct
	if json.Unmarshal(o.Body, &dp) != nil {
		return 0
	}
	return pipeline.Timeout(&dp, lc.infra(ctx, &dp))
}

func (lc *lifecycle) infra(ctx context.Context, dp *rhizome.DataProduct) *rhizome.Infrastructure {
	if dp.Infrastructure == "" {
		return nil
	}
	o, err := lc.store.Get(ctx, rhizome.KindInfrastructure, dp.Infrastructure)
	if err != nil {
		return nil
	}
	inf := new(rhizome.Infrastructure)
	if json.Unmarshal(o.Body, inf) != nil {
		return nil
	}
	return inf
}

// refreshSchedules gives the scheduler every product's cron schedule.
func (lc *lifecycle) refreshSchedules(ctx context.Context) {
	sched := map[string]jobs.Schedule{}
	lc.products(ctx, func(dp *rhizome.DataProduct) {
		inf := lc.infra(ctx, dp)
		if cron := pipeline.Schedule(dp, inf); cron != "" {
			sched[dp.ID] = jobs.Schedule{Cron: cron, Timeout: pipeline.Timeout(dp, inf)}
		}
	})
	lc.jobs.SetSchedules(sched)
	lc.refreshStreams(ctx)
}

// runDemo starts the demo's source products; their publishes trigger the
// rest downstream.
func (lc *lifecycle) runDemo(ctx context.Context, out io.Writer) {
	n := 0
	lc.products(ctx, func(dp *rhizome.DataProduct) {
		for _, p := range dp.InputPorts {
			if p.Product != "" {
				return
			}
		}
		if _, err := lc.jobs.Enqueue(ctx, jobs.Request{ProductID: dp.ID, Trigger: rhizome.TriggerManual, Actor: "demo"}); err == nil {
			n++
		}
	})
	fmt.Fprintf(out, "demo: queued %d source pipelines; downstream products follow as they publish\n", n)
}

// extractDemoData writes the example data next to the store, once, and
// returns the directory the demo's connector paths resolve in.
func extractDemoData(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "examples")
	err := fs.WalkDir(examples.FS, "data", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dst := filepath.Join(dir, p)
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		b, err := examples.FS.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		return "", rhizome.Wrap(err, "extracting the demo data")
	}
	return dir, nil
}

// refreshStreams gives the flusher every product's stream input port and
// its micro-batch thresholds.
func (lc *lifecycle) refreshStreams(ctx context.Context) {
	if lc.flusher == nil {
		return
	}
	ports := map[string]stream.PortConfig{}
	lc.products(ctx, func(dp *rhizome.DataProduct) {
		for _, p := range dp.InputPorts {
			if p.Connector != streamconn.Name {
				continue
			}
			interval, rows, err := streamconn.Thresholds(p.Config)
			if err != nil {
				lc.cfg.Logger.Warn("stream input port", "product", dp.ID, "port", p.Name, "err", err)
				continue
			}
			if _, dup := ports[dp.ID]; dup {
				lc.cfg.Logger.Warn("only a product's first stream input port triggers runs", "product", dp.ID, "port", p.Name)
				continue
			}
			if dp.Pipeline.Mode != "append" && dp.Pipeline.Mode != "merge" {
				lc.cfg.Logger.Warn("each micro-batch replaces the product's data; set pipeline.mode: append", "product", dp.ID)
			}
			ports[dp.ID] = stream.PortConfig{Port: p.Name, Interval: interval, Rows: rows}
		}
	})
	lc.flusher.SetPorts(ports)
}

// onlyStreams reports whether every input port of the product is a
// stream port (so with nothing pushed there is no input at all).
func (lc *lifecycle) onlyStreams(ctx context.Context, productID string) bool {
	o, err := lc.store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return false
	}
	var dp rhizome.DataProduct
	if json.Unmarshal(o.Body, &dp) != nil || len(dp.InputPorts) == 0 {
		return false
	}
	for _, p := range dp.InputPorts {
		if p.Connector != streamconn.Name {
			return false
		}
	}
	return true
}

// nothingPushed reports whether none of the product's stream input ports
// has pending batches: a push run then has nothing to commit.
func (lc *lifecycle) nothingPushed(ctx context.Context, productID string) bool {
	o, err := lc.store.Get(ctx, rhizome.KindDataProduct, productID)
	if err != nil {
		return false
	}
	var dp rhizome.DataProduct
	if json.Unmarshal(o.Body, &dp) != nil {
		return false
	}
	for _, p := range dp.InputPorts {
		if p.Connector != streamconn.Name {
			continue
		}
		if files, _, _, err := lc.spool.Pending(productID, p.Name); err != nil || len(files) > 0 {
			return false
		}
	}
	return true
}
