package pgwire

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// jdbcJar is where Debian's libpostgresql-jdbc-java puts pgjdbc.
const jdbcJar = "/usr/share/java/postgresql.jar"

// TestJDBC: the PostgreSQL JDBC driver (pgjdbc, as DBeaver, Metabase and
// other JVM tools use it) connects with a token as password, lists
// schemas, tables and columns with their types (DatabaseMetaData), binds
// parameters, pages through a portal with a fetch size inside a
// transaction, decodes decimal, uuid and timestamptz, and gets SQLSTATEs.
// It needs a JDK and pgjdbc (scripts/test.sh installs default-jdk-headless
// and libpostgresql-jdbc-java); missing either fails the test.
func TestJDBC(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is not installed (apt-get install default-jdk-headless): %v", err)
	}
	if _, err := os.Stat(jdbcJar); err != nil {
		t.Fatalf("pgjdbc is not installed (apt-get install libpostgresql-jdbc-java): %v", err)
	}
	e := newEnv(t)
	out, err := exec.Command(java, "-cp", jdbcJar, "testdata/JdbcCheck.java",
		"jdbc:postgresql://"+e.addr+"/rhizome?sslmode=disable", "alice", e.token).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := strings.Join([]string{
		"product=PostgreSQL",
		"schema=main",
		"table=main.sales_orders TABLE",
		"column=id int4 4 10 0",
		"column=customer text 12 2147483647 0",
		"column=amount numeric 2 18 2",
		"column=ref uuid 1111 2147483647 0",
		"column=placed_at timestamptz 93 35 6",
		"column=qty json 1111 2147483647 0",
		"column=tags json 1111 2147483647 0",
		"column=note int4 4 10 0",
		"row=1|o'brien|19.99|6f1c2a9e-3b7d-4c1e-9f00-0a1b2c3d4e5f|2024-03-01T10:00:00Z|null",
		"injected=0",
		"fetched=25000|312487500",
		"refused=42501",
		"refused=42501",
		"refused=42601",
	}, "\n")
	if got != want {
		t.Errorf("JDBC session:\n%s\nwant:\n%s", got, want)
	}
}

// TestTimestamptzText: timestamptz goes out in text as Postgres writes it
// ("+00", never "Z"), which drivers that parse Postgres' output expect.
func TestTimestamptzText(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command(psqlPath(t), e.url("disable"), "-X", "-Atc",
		"select placed_at, TIMESTAMPTZ '2024-03-01 10:00:00.5+05:30' from sales_orders where id = 1").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "2024-03-01 10:00:00+00|2024-03-01 04:30:00.5+00"; got != want {
		t.Errorf("timestamptz text = %q, want %q", got, want)
	}
}
