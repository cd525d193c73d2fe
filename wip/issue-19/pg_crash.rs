
/// The same against PostgreSQL, merged by key with a lookback: each trial
/// inserts rows, updates some and adds one late (stamped before the
/// watermark), and a run killed at a random moment is followed by one that
/// completes; the table then equals the database's, row for row.
#[test]
fn killed_merges_from_postgres_leave_the_table_equal_to_the_database() {
    let Some(url) = crate::databases::pg_url() else {
        return;
    };
    let table = format!("inc_crash_{}", std::process::id());
    let pg = |sql: &str| crate::databases::pg(&url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    pg(&format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id bigint PRIMARY KEY, amount numeric(12,2), note text,
                               updated_at timestamptz NOT NULL);"
    ));
    let text = format!(
        r#"
[project]
name = "pg_incremental"

[sources.orders]
postgres = {{ url = "{url}", table = "{table}" }}
incremental = {{ column = "updated_at", key = ["id"], mode = "merge", lookback = "1h" }}

[sources.orders_all]
postgres = {{ url = "{url}", table = "{table}" }}
"#
    );
    let p = project(&[("sluice.toml", text.as_bytes())]);
    let dir = p.path();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut killed = 0;
    for trial in 0..20_i64 {
        // One late order (stamped 30 minutes before the newest so far), then
        // 500 new ones a minute apart, and some older ones changed.
        let base = trial * 500;
        pg(&format!(
            "INSERT INTO {table} SELECT -{trial} - 1, 0, 'late', max(updated_at) - interval '30 minutes'
               FROM {table} HAVING max(updated_at) IS NOT NULL;
             INSERT INTO {table}
               SELECT g, g * 1.25, 'order ' || g || ' ✓', timestamptz '2024-01-01 00:00+00' + g * interval '1 minute'
               FROM generate_series({base}, {base} + 499) g;
             UPDATE {table} SET amount = amount + 1,
                 updated_at = timestamptz '2024-01-01 00:00+00' + {base} * interval '1 minute' + interval '499 minutes'
               WHERE id % 97 = {trial} AND id >= 0 AND id < {base};"
        ));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(seed % 1_200);
        let mut child = sluice_cmd(dir)
            .args(["run", "orders"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            killed += 1;
        }
        child.wait().expect("reap");
        if let Some(w) = watermark(dir, "orders") {
            let newest = ok(
                dir,
                &["query", "--format", "csv", "SELECT CAST(max(updated_at) AS VARCHAR) AS m FROM orders"],
            );
            assert_eq!(newest.lines().nth(1).unwrap_or_default(), w, "trial {trial}");
        }
        let (done, s) = run_json(dir, &[]);
        assert!(done, "trial {trial}: {s}");
        let q = |sql: &str| scalar(dir, sql);
        assert_eq!(q("SELECT count(*) FROM orders"), q("SELECT count(*) FROM orders_all"), "trial {trial}");
        assert_eq!(q("SELECT count(DISTINCT id) FROM orders"), q("SELECT count(*) FROM orders"), "trial {trial}");
        assert_eq!(
            q("SELECT count(*) FROM (SELECT * FROM orders_all EXCEPT SELECT * FROM orders)"),
            0,
            "trial {trial}"
        );
    }
    pg(&format!("DROP TABLE {table}"));
    eprintln!("{killed} of 20 runs were killed before they ended");
}
