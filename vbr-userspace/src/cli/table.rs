//! Human output: left-aligned columns, as iproute2 prints them.

/// Prints `rows` as a JSON array with `json`, else as a table of `headers` with `cells` of each.
pub fn show<T: serde::Serialize>(
    json: bool,
    rows: &[T],
    headers: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(rows)?);
    } else {
        print(headers, &rows.iter().map(cells).collect::<Vec<_>>());
    }
    Ok(())
}

/// Prints `rows` under `headers`, each column as wide as its widest cell.
pub fn print(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A PVID as `bridge vlan show` would name it.
pub fn pvid(pvid: Option<u16>) -> String {
    pvid.map_or("none".to_owned(), |vid| vid.to_string())
}

/// Ascending VLAN ids folded into ranges: `10,20-23`; `-` for none.
pub fn vlan_ranges(vids: &[u16]) -> String {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &vid in vids {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == vid => *last = vid,
            _ => ranges.push((vid, vid)),
        }
    }
    if ranges.is_empty() {
        return "-".to_owned();
    }
    ranges
        .iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_vlan_ranges() {
        assert_eq!(super::vlan_ranges(&[]), "-");
        assert_eq!(super::vlan_ranges(&[10, 20, 21, 22, 30]), "10,20-22,30");
    }
}
