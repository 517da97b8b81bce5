//! The README's configuration table is the lecturer's first view of the flags: every flag in it
//! exists, and every flag `clickgame --help` lists is in it — so the two cannot drift apart.

use std::collections::BTreeSet;

use clap::CommandFactory;
use clickgame::config::Config;

/// The rows of README.md's "Configuration" table, each with the flags it is about: those in
/// its first column outside parentheses (an explanation may mention other flags), plus a
/// companion in "(+ `--flag`)".
fn readme_rows() -> Vec<(&'static str, Vec<String>)> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a Configuration section");
    table
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|row| {
            let first = row.split(" | ").next().unwrap_or("");
            let (mut kept, mut depth, mut keep_group) = (String::new(), 0usize, false);
            for (i, c) in first.char_indices() {
                match c {
                    '(' => {
                        if depth == 0 {
                            keep_group = first[i..].starts_with("(+");
                        }
                        depth += 1;
                    }
                    ')' => depth = depth.saturating_sub(1),
                    _ if depth == 0 || keep_group => kept.push(c),
                    _ => {}
                }
            }
            let flags = kept
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|piece| piece.strip_prefix("--"))
                .map(|name| name.split_whitespace().next().unwrap_or(name).to_string())
                .collect();
            (row, flags)
        })
        .collect()
}

fn readme_flags() -> BTreeSet<String> {
    readme_rows()
        .into_iter()
        .flat_map(|(_, flags)| flags)
        .collect()
}

fn cli_flags() -> BTreeSet<String> {
    Config::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .filter(|name| name != "help" && name != "version")
        .collect()
}

#[test]
fn the_readme_configuration_table_names_exactly_the_flags_clickgame_has() {
    let readme = readme_flags();
    let cli = cli_flags();
    let unknown: Vec<_> = readme.difference(&cli).collect();
    let missing: Vec<_> = cli.difference(&readme).collect();
    assert!(
        unknown.is_empty(),
        "in README.md but not a flag: {unknown:?}"
    );
    assert!(
        missing.is_empty(),
        "flags missing from README.md's table: {missing:?}"
    );
}

#[test]
fn each_flag_in_the_readme_table_shows_its_environment_variable() {
    let rows = readme_rows();
    for arg in Config::command().get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let (row, _) = rows
            .iter()
            .find(|(_, flags)| flags.iter().any(|f| f == long))
            .unwrap_or_else(|| panic!("no README row for --{long}"));
        let env = env.to_string_lossy();
        assert!(
            row.contains(&format!("`{env}`")),
            "--{long}'s row does not name {env}: {row}"
        );
    }
}
