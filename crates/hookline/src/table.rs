//! Plain aligned columns for the operator commands: readable in a terminal,
//! and `--json` is there for anything that parses.

/// Rows printed under a header, each column as wide as its widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds one row; a newline in a cell would break the columns, so it
    /// becomes a space.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.replace(['\n', '\r'], " "))
                .collect(),
        );
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints [`Table::render`], or a note when there are no rows.
    pub fn print(&self) {
        if self.rows.is_empty() {
            println!("(none)");
        } else {
            print!("{}", self.render());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn columns_line_up_under_the_widest_cell() {
        let mut table = Table::new(&["ID", "URL"]);
        table.row(vec!["sub_1".into(), "https://a.example/x".into()]);
        table.row(vec!["s2".into(), "b\nc".into()]);
        assert_eq!(
            table.render(),
            "ID     URL\nsub_1  https://a.example/x\ns2     b c\n"
        );
    }
}
