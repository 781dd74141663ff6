using EdgeShield.Policy;
using EdgeShield.Transport;

namespace EdgeShield.Telemetry;

/// <summary>One read request of a poll cycle and the tags it serves.</summary>
public sealed class ReadBlock
{
    internal ReadBlock(ReadFunction function, ushort start, ushort quantity, int[] tagIndexes)
    {
        Function = function;
        Start = start;
        Quantity = quantity;
        TagIndexes = tagIndexes;
    }

    public ReadFunction Function { get; }
    public ushort Start { get; }
    public ushort Quantity { get; }
    /// <summary>Indexes into the poll entry's tags.</summary>
    public IReadOnlyList<int> TagIndexes { get; }
}

/// <summary>
/// Coalesces the tags of one poll entry into the fewest reads the spec allows: per table, sorted by
/// address, a read grows while it stays within 125 registers / 2000 bits and the unused space it
/// would span between two tags is at most <see cref="PollConfig.MaxGap"/> (0: only adjacent or overlapping tags).
/// </summary>
public static class TagPlan
{
    public static IReadOnlyList<ReadBlock> Build(PollConfig poll)
    {
        ArgumentNullException.ThrowIfNull(poll);
        var blocks = new List<ReadBlock>();
        foreach (var table in (ReadOnlySpan<TagTable>)[TagTable.Coil, TagTable.DiscreteInput, TagTable.Holding, TagTable.Input])
        {
            var indexes = new List<int>();
            for (int i = 0; i < poll.Tags.Count; i++)
            {
                if (poll.Tags[i].Table == table)
                {
                    indexes.Add(i);
                }
            }
            if (indexes.Count == 0)
            {
                continue;
            }
            indexes.Sort((a, b) => poll.Tags[a].Address != poll.Tags[b].Address ? poll.Tags[a].Address.CompareTo(poll.Tags[b].Address) : a.CompareTo(b));
            var function = (ReadFunction)(byte)table;
            int max = ReadOnlyModbusClient.MaxQuantity(function);
            int start = -1, end = -1;
            var members = new List<int>();
            foreach (int index in indexes)
            {
                var tag = poll.Tags[index];
                int tagEnd = tag.Address + tag.Width - 1;
                bool joins = start >= 0
                    && tag.Address - (end + 1) <= poll.MaxGap
                    && Math.Max(end, tagEnd) - start + 1 <= max;
                if (!joins)
                {
                    if (start >= 0)
                    {
                        blocks.Add(new ReadBlock(function, (ushort)start, (ushort)(end - start + 1), [.. members]));
                    }
                    start = tag.Address;
                    end = tagEnd;
                    members.Clear();
                }
                end = Math.Max(end, tagEnd);
                members.Add(index);
            }
            blocks.Add(new ReadBlock(function, (ushort)start, (ushort)(end - start + 1), [.. members]));
        }
        return blocks;
    }
}
