// JdbcCheck drives the SQL endpoint with the PostgreSQL JDBC driver (pgjdbc)
// for pgwire's TestJDBC: java -cp postgresql.jar JdbcCheck.java URL USER PASSWORD.
// It prints one line per observation; the Go test compares them.
import java.sql.*;

public class JdbcCheck {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      System.out.println("product=" + c.getMetaData().getDatabaseProductName());
      // DatabaseMetaData, as DBeaver's navigator and Metabase's sync call it.
      DatabaseMetaData md = c.getMetaData();
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) System.out.println("schema=" + rs.getString("TABLE_SCHEM"));
      }
      try (ResultSet rs = md.getTables(null, null, "sales%", new String[]{"TABLE"})) {
        while (rs.next()) System.out.println("table=" + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
      }
      try (ResultSet rs = md.getColumns(null, null, "sales_orders", "%")) {
        while (rs.next()) {
          System.out.println("column=" + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE")
              + " " + rs.getInt("COLUMN_SIZE") + " " + rs.getInt("DECIMAL_DIGITS"));
        }
      }
      // A prepared statement with a parameter (extended protocol, bound).
      try (PreparedStatement ps = c.prepareStatement("SELECT id, customer, amount, ref, placed_at, note FROM sales_orders WHERE id = ?")) {
        ps.setInt(1, 1);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            System.out.println("row=" + rs.getInt(1) + "|" + rs.getString(2) + "|" + rs.getBigDecimal(3) + "|" + rs.getObject(4)
                + "|" + rs.getTimestamp(5).toInstant() + "|" + rs.getObject(6));
          }
        }
      }
      // Quotes in a parameter stay data.
      try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM sales_orders WHERE customer = ?")) {
        ps.setString(1, "o'brien' OR '1'='1");
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          System.out.println("injected=" + rs.getLong(1));
        }
      }
      // A fetch size makes pgjdbc read through a portal in a transaction.
      c.setAutoCommit(false);
      try (Statement st = c.createStatement()) {
        st.setFetchSize(1000);
        long n = 0, sum = 0;
        try (ResultSet rs = st.executeQuery("SELECT i FROM big WHERE i < 25000")) {
          while (rs.next()) { n++; sum += rs.getLong(1); }
        }
        System.out.println("fetched=" + n + "|" + sum);
      }
      c.commit();
      c.setAutoCommit(true);
      // Refusals come back as SQLExceptions with the SQLSTATE.
      try (Statement st = c.createStatement()) {
        for (String q : new String[]{"SELECT * FROM secret", "SELECT * FROM read_csv('/etc/passwd')", "SELEC 1"}) {
          try {
            st.executeQuery(q);
            System.out.println("ran=" + q);
          } catch (SQLException e) {
            System.out.println("refused=" + e.getSQLState());
          }
        }
      }
    }
  }
}
