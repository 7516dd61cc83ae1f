using System.Globalization;

namespace VSwitch.Ctl;

/// <summary>
/// An aligned text table with a header row: each column as wide as its widest cell, columns of
/// numbers right-aligned, two spaces between columns, no trailing blanks. A null cell prints as "-".
/// Given a width, the columns marked <see cref="Cut"/> (long text: matches, actions, paths) are narrowed,
/// widest first, until the lines fit, and their longer cells end in "…"; the others are never cut.
/// </summary>
public sealed class TableWriter(params string[] headers)
{
    private const string Gap = "  ";
    private const char Ellipsis = '…';
    /// <summary>A cut column keeps at least this many characters (or its header's).</summary>
    private const int MinCutWidth = 12;
    private readonly List<Cell[]> _rows = [];
    private readonly HashSet<int> _cut = [];

    private readonly record struct Cell(string Text, bool IsNumber);

    public int Count => _rows.Count;

    public TableWriter AddRow(params object?[] cells)
    {
        if (cells.Length != headers.Length)
            throw new ArgumentException($"row has {cells.Length} cells, the table has {headers.Length} columns", nameof(cells));
        _rows.Add(cells.Select(ToCell).ToArray());
        return this;
    }

    /// <summary>These columns may be cut to fit a width (the others never are).</summary>
    public TableWriter Cut(params string[] columns)
    {
        foreach (string c in columns)
        {
            int i = Array.IndexOf(headers, c);
            if (i < 0) throw new ArgumentException($"no column {c}", nameof(columns));
            _cut.Add(i);
        }
        return this;
    }

    /// <summary>Writes the table; with <paramref name="maxWidth"/> &gt; 0, cut to fit it where the columns allow.</summary>
    public void Write(TextWriter w, int maxWidth = 0)
    {
        int n = headers.Length;
        var width = new int[n];
        var right = new bool[n];
        for (int c = 0; c < n; c++)
        {
            width[c] = Math.Max(headers[c].Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[c].Text.Length));
            // A column is numeric when every cell is a number or a placeholder, and one at least is a number.
            right[c] = _rows.Any(r => r[c].IsNumber) && _rows.All(r => r[c].IsNumber || r[c].Text == "-");
        }
        if (maxWidth > 0) Fit(width, maxWidth);
        WriteLine(w, headers, width, right);
        foreach (var row in _rows) WriteLine(w, row.Select((x, c) => Shorten(x.Text, width[c])).ToArray(), width, right);
    }

    /// <summary>Narrows the widest cut column one character at a time until the line fits (or none can give more).</summary>
    private void Fit(int[] width, int maxWidth)
    {
        int total = width.Sum() + Gap.Length * (width.Length - 1);
        while (total > maxWidth)
        {
            int widest = -1;
            foreach (int c in _cut)
                if (width[c] > Math.Max(MinCutWidth, headers[c].Length) && (widest < 0 || width[c] > width[widest])) widest = c;
            if (widest < 0) return;
            width[widest]--;
            total--;
        }
    }

    private static string Shorten(string text, int width) =>
        text.Length <= width ? text : string.Concat(text.AsSpan(0, Math.Max(0, width - 1)), Ellipsis.ToString());

    private static void WriteLine(TextWriter w, string[] cells, int[] width, bool[] right)
    {
        var line = new System.Text.StringBuilder();
        for (int c = 0; c < cells.Length; c++)
        {
            if (c > 0) line.Append(Gap);
            bool last = c == cells.Length - 1;
            if (right[c]) line.Append(cells[c].PadLeft(width[c]));
            else line.Append(last ? cells[c] : cells[c].PadRight(width[c]));
        }
        w.WriteLine(line.ToString().TrimEnd());
    }

    private static Cell ToCell(object? value) => value switch
    {
        null => new("-", false),
        double d => new(d.ToString("0.0", CultureInfo.InvariantCulture), true),
        float f => new(f.ToString("0.0", CultureInfo.InvariantCulture), true),
        byte or sbyte or short or ushort or int or uint or long or ulong or decimal =>
            new(Convert.ToString(value, CultureInfo.InvariantCulture)!, true),
        _ => new(Convert.ToString(value, CultureInfo.InvariantCulture) is { Length: > 0 } s ? s : "-", false),
    };
}
