namespace EdgeShield.Protocols.Tests;

/// <summary>Finds tests/data from the test assembly's directory, so tests run from any working directory.</summary>
internal static class TestData
{
    public static string Directory { get; } = Find();

    public static string PathOf(string relative) => Path.Combine(Directory, relative);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "data");
            if (System.IO.Directory.Exists(Path.Combine(candidate, "modbus")))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/data not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Reads a CSV with a header row (RFC 4180 quoting) into one dictionary per row.</summary>
    public static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new System.Text.StringBuilder();
        string text = File.ReadAllText(path);
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    row.Add(field.ToString());
                    field.Clear();
                    break;
                case '\n':
                    row.Add(field.ToString());
                    field.Clear();
                    rows.Add(row);
                    row = [];
                    break;
                case '\r':
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString());
            rows.Add(row);
        }
        var header = rows[0];
        var result = new List<Dictionary<string, string>>();
        foreach (var r in rows.Skip(1))
        {
            var dict = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < header.Count; i++)
            {
                dict[header[i]] = i < r.Count ? r[i] : "";
            }
            result.Add(dict);
        }
        return result;
    }
}

/// <summary>Formats a 128-bit capture address (IPv4 as IPv4-mapped IPv6) as tshark prints it.</summary>
internal static class CaptureAddress
{
    public static string Format(UInt128 value)
    {
        var bytes = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        var address = new System.Net.IPAddress(bytes);
        return (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
    }
}
