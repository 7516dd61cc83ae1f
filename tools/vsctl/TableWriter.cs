using System.Globalization;

namespace VSwitch.Ctl;

/// <summary>
/// An aligned text table with a header row: each column as wide as its widest cell, columns of
/// numbers right-aligned, two spaces between columns, no trailing blanks. A null cell prints as "-".
/// </summary>
public sealed class TableWriter(params string[] headers)
{
    private const string Gap = "  ";
    private readonly List<Cell[]> _rows = [];

    private readonly record struct Cell(string Text, bool IsNumber);

    public int Count => _rows.Count;

    public TableWriter AddRow(params object?[] cells)
    {
        if (cells.Length != headers.Length)
            throw new ArgumentException($"row has {cells.Length} cells, the table has {headers.Length} columns", nameof(cells));
        _rows.Add(cells.Select(ToCell).ToArray());
        return this;
    }

    public void Write(TextWriter w)
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
        WriteLine(w, headers, width, right);
        foreach (var row in _rows) WriteLine(w, row.Select(x => x.Text).ToArray(), width, right);
    }

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
