//! `examples/baseball`, the seed's baseball platform, end to end on its real
//! data (the Lahman Baseball Databank, 1871-2020): the contracts on the three
//! sources, the season tables and their rates, the per-player feature views
//! online, the keyed career export and the daily schedule.

use std::path::Path;

use crate::common::*;

const ALL: [&str; 10] = [
    "batting",
    "batting_form",
    "batting_seasons",
    "careers",
    "careers_json",
    "people",
    "pitching",
    "pitching_form",
    "pitching_seasons",
    "players",
];

/// `sluice get VIEW KEY --json`: the features of the entity's online record.
fn online(project: &Path, view: &str, key: &str) -> serde_json::Value {
    let text = ok(project, &["get", view, key, "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("no JSON ({e}):\n{text}"));
    v["features"].clone()
}

fn close(v: &serde_json::Value, x: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - x).abs() < 1e-9)
}

#[test]
fn the_baseball_example_builds_season_lines_forms_and_careers_from_the_databank() {
    let dir = example_copy("baseball");
    let p = dir.path();
    let (ok_run, summary) = run_json(p, &[]);
    assert!(ok_run, "{summary}");
    for a in ALL {
        assert_eq!(asset(&summary, a)["status"], "built", "{a}: {summary}");
    }
    assert_eq!(summary["assets"].as_array().map(Vec::len), Some(ALL.len()));

    // Every line of the databank passes the row rules: nothing is quarantined.
    // The Federal League's 68 pitching lines with BFP = 0 (1914-15) break the
    // warn rule: recorded, and they flow on.
    for (source, rows) in [("people", 20093), ("batting", 108789), ("pitching", 48399)] {
        let a = asset(&summary, source);
        assert_eq!(a["rows_in"], rows, "{a}");
        assert_eq!(a["rows_out"], rows, "{a}");
        assert_eq!(a["rows_quarantined"], 0, "{a}");
        let q = scalar(p, &format!("SELECT count(*) FROM {source}__quarantine"));
        assert_eq!(q, 0, "{source}");
    }
    assert_eq!(asset(&summary, "batting")["warnings"], 0);
    assert_eq!(asset(&summary, "people")["warnings"], 0);
    assert_eq!(asset(&summary, "pitching")["warnings"], 1);
    let report = dir.path().join("pitching.json");
    ok(
        p,
        &[
            "report",
            "pitching",
            "--output",
            report.to_str().expect("utf-8"),
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report")).expect("JSON");
    let warned = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "outs_need_batters_faced"))
        .unwrap_or_else(|| panic!("no BFP check in {report}"));
    assert_eq!(warned["severity"], "warn", "{warned}");
    assert_eq!(warned["failing_rows"], 68, "{warned}");
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM pitching WHERE \"IPouts\" > 0 AND \"BFP\" = 0 \
             AND \"yearID\" IN (1914, 1915)"
        ),
        68
    );

    // Stints summed: one line per player and season.
    assert_eq!(asset(&summary, "batting_seasons")["rows_out"], 100690);
    assert_eq!(asset(&summary, "pitching_seasons")["rows_out"], 44723);
    assert_eq!(asset(&summary, "players")["rows_out"], 20093);
    assert_eq!(asset(&summary, "careers")["rows_out"], 19898);
    assert_eq!(asset(&summary, "batting_form")["rows_out"], 100690);
    assert_eq!(asset(&summary, "pitching_form")["rows_out"], 44723);
    assert_eq!(asset(&summary, "careers_json")["rows_out"], 19898);

    // Barry Bonds: 73 HR in 2001, the most of any season; a .609 OBP in 2004
    // ((135 H + 232 BB + 9 HBP) / (373 AB + 232 + 9 + 3 SF) = 376 / 617).
    let bonds = |season: i32, column: &str| {
        format!(
            "SELECT {column} FROM batting_seasons WHERE player_id = 'bondsba01' AND season = {season}"
        )
    };
    assert_eq!(scalar(p, &bonds(2001, "hr")), 73);
    assert_eq!(
        scalar(
            p,
            "SELECT hr FROM batting_seasons ORDER BY hr DESC, season LIMIT 1"
        ),
        73
    );
    assert!((number(p, &bonds(2004, "obp")) - 376.0 / 617.0).abs() < 1e-12);
    assert_eq!(
        scalar(p, &bonds(2004, "CAST(round(obp * 1000) AS BIGINT)")),
        609
    );
    // SLG = (1B + 2*2B + 3*3B + 4*HR) / AB; OPS = OBP + SLG: 2001 is .863 and 1.379.
    assert_eq!(
        scalar(p, &bonds(2001, "CAST(round(slg * 1000) AS BIGINT)")),
        863
    );
    assert_eq!(
        scalar(p, &bonds(2001, "CAST(round(ops * 1000) AS BIGINT)")),
        1379
    );
    assert_eq!(
        scalar(p, &bonds(2001, "CAST(round(avg * 1000) AS BIGINT)")),
        328
    );

    // Pedro Martinez, 2000: 42 ER in 217 innings (651 outs): ERA 1.74, WHIP
    // 0.737 ((32 BB + 128 H) / 217), 11.78 strikeouts per nine (284 SO).
    let pedro = |column: &str| {
        format!(
            "SELECT {column} FROM pitching_seasons WHERE player_id = 'martipe02' AND season = 2000"
        )
    };
    assert_eq!(scalar(p, &pedro("ipouts")), 651);
    assert!((number(p, &pedro("era")) - 9.0 * 42.0 / 217.0).abs() < 1e-12);
    assert_eq!(scalar(p, &pedro("CAST(round(era * 100) AS BIGINT)")), 174);
    assert_eq!(scalar(p, &pedro("CAST(round(whip * 1000) AS BIGINT)")), 737);
    assert_eq!(
        scalar(p, &pedro("CAST(round(k_per_9 * 100) AS BIGINT)")),
        1178
    );

    // A denominator of 0 is NULL, not an error: seasons without an at bat or
    // without an out.
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM batting_seasons WHERE ab = 0 AND avg IS NULL AND slg IS NULL"
        ),
        scalar(p, "SELECT count(*) FROM batting_seasons WHERE ab = 0")
    );
    assert_eq!(
        scalar(
            p,
            "SELECT count(*) FROM pitching_seasons WHERE ipouts = 0 AND era IS NULL"
        ),
        87
    );

    // The display name, for search.
    let found = ok(
        p,
        &[
            "query",
            "--format",
            "csv",
            "SELECT player_id, name FROM players WHERE name ILIKE '%bonds%' ORDER BY player_id",
        ],
    );
    assert_eq!(
        found,
        "player_id,name\nbondsba01,Barry Bonds\nbondsbo01,Bobby Bonds\n"
    );

    // `sluice get` answers a player's latest season (Bonds' last was 2007),
    // the same line as the season table's, and his last three seasons summed.
    let form = online(p, "batting_form", "bondsba01");
    assert_eq!(form["season"], 2007, "{form}");
    assert_eq!(form["teams"], "SFN", "{form}");
    assert_eq!(form["hr"], 28, "{form}");
    assert_eq!(form["ab"], 340, "{form}");
    for column in ["avg", "obp", "slg", "ops"] {
        let table = number(p, &bonds(2007, column));
        assert!(close(&form[column], table), "{column}: {form} vs {table}");
    }
    assert_eq!(form["seasons_3y"], 3, "{form}");
    assert_eq!(form["hr_3y"], 59, "{form}"); // 2005-2007: 5 + 26 + 28
    assert_eq!(form["ab_3y"], 749, "{form}");
    // OBP over 2005-2007 from the summed counts: (205 H + 256 BB + 13 HBP) / (749 + 256 + 13 + 4 SF).
    assert!(close(&form["obp_3y"], 474.0 / 1022.0), "{form}");

    let form = online(p, "pitching_form", "martipe02");
    assert_eq!(form["season"], 2009, "{form}");
    assert_eq!(form["teams"], "PHI", "{form}");
    assert_eq!(form["ipouts"], 134, "{form}");
    assert!(close(&form["era"], 27.0 * 18.0 / 134.0), "{form}");
    assert_eq!(form["w_3y"], 13, "{form}");
    assert_eq!(form["ipouts_3y"], 545, "{form}");

    // Windows are calendar seasons: Ted Williams' 1946, after three seasons at
    // war, sums that season alone.
    assert_eq!(
        scalar(
            p,
            "SELECT seasons_3y FROM batting_form WHERE player_id = 'willite01' AND season = 1946"
        ),
        1
    );
    // Over every row, `_3y` is the season and the two before it.
    assert_eq!(
        scalar(
            p,
            "WITH w AS (SELECT a.player_id, a.season, count(*) AS n, sum(b.hr) AS hr \
             FROM batting_seasons a JOIN batting_seasons b ON a.player_id = b.player_id \
             AND b.season BETWEEN a.season - 2 AND a.season GROUP BY a.player_id, a.season) \
             SELECT count(*) FROM w JOIN batting_form f \
             ON f.player_id = w.player_id AND f.season = w.season \
             WHERE f.seasons_3y <> w.n OR f.hr_3y <> w.hr"
        ),
        0
    );

    // The export: every player with a line, keyed by id.
    let careers: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.join("exports/careers.json")).expect("the export"),
    )
    .expect("JSON");
    assert_eq!(careers.as_object().map(|o| o.len()), Some(19898));
    let bonds = &careers["bondsba01"];
    assert_eq!(bonds["name"], "Barry Bonds", "{bonds}");
    assert_eq!(bonds["first_season"], 1986, "{bonds}");
    assert_eq!(bonds["last_season"], 2007, "{bonds}");
    assert_eq!(bonds["hr"], 762, "{bonds}");
    assert_eq!(bonds["h"], 2935, "{bonds}");
    assert!(close(&bonds["avg"], 2935.0 / 9847.0), "{bonds}");
    assert!(bonds["era"].is_null(), "{bonds}");
    let pedro = &careers["martipe02"];
    assert_eq!(pedro["w"], 219, "{pedro}");
    assert_eq!(pedro["l"], 100, "{pedro}");
    assert_eq!(pedro["pitching_so"], 3154, "{pedro}");
    assert!(close(&pedro["era"], 27.0 * 919.0 / 8482.0), "{pedro}");

    // Nothing changed: the next run rebuilds nothing.
    let (ok_run, again) = run_json(p, &[]);
    assert!(ok_run, "{again}");
    assert!(
        statuses(&again).iter().all(|(_, s)| s == "up_to_date"),
        "{again}"
    );

    // The daily schedule refreshes every asset at 06:00 in New York.
    let schedules = ok(p, &["schedules", "--json"]);
    let schedules: serde_json::Value = serde_json::from_str(&schedules).expect("JSON");
    let daily = &schedules["schedules"][0];
    assert_eq!(daily["name"], "daily", "{schedules}");
    assert_eq!(daily["cron"], "0 6 * * *", "{daily}");
    assert_eq!(daily["timezone"], "America/New_York", "{daily}");
    assert_eq!(daily["assets"], serde_json::json!([]), "{daily}");
    let next = daily["next_tick"].as_str().expect("a next tick");
    assert!(
        next.ends_with("T10:00:00Z") || next.ends_with("T11:00:00Z"),
        "{daily}"
    );
}
