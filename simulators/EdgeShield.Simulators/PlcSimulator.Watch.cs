using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Simulators;

/// <summary>The lowest and highest address of one table that requests touched; <see cref="IsEmpty"/> when none did.</summary>
public readonly record struct TouchedRange(int First, int Last)
{
    public static TouchedRange None => new(-1, -1);

    public bool IsEmpty => First < 0;

    /// <summary>True when nothing was touched or everything touched lies in <paramref name="first"/>..<paramref name="last"/>.</summary>
    public bool Within(int first, int last) => IsEmpty || (First >= first && Last <= last);

    public override string ToString() => IsEmpty ? "none" : $"{First}-{Last}";
}

/// <summary>
/// What the PLC was asked to touch, so that a test behind a firewall can prove what reached it:
/// per table the address range read and written, and the range of register values written.
/// Lock-free (compare-and-swap on each bound) and allocation-free.
/// </summary>
public sealed partial class PlcSimulator
{
    // Index: (int)ModbusTable; [table*2] = first, [table*2+1] = last; int.MaxValue / -1 when untouched.
    private readonly int[] _readBounds = NewBounds();
    private readonly int[] _writeBounds = NewBounds();
    private readonly int[] _valueBounds = [int.MaxValue, -1];
    private long _outOfSpecRequests;

    /// <summary>Decodable requests that broke a limit of the spec (quantity, coil value, byte count…).</summary>
    public long OutOfSpecRequests => Interlocked.Read(ref _outOfSpecRequests);

    /// <summary>The addresses of <paramref name="table"/> that decodable requests asked to read.</summary>
    public TouchedRange ReadRange(ModbusTable table) => Bounds(_readBounds, (int)table * 2);

    /// <summary>The addresses of <paramref name="table"/> that decodable requests asked to write.</summary>
    public TouchedRange WriteRange(ModbusTable table) => Bounds(_writeBounds, (int)table * 2);

    /// <summary>The smallest and largest register value that FC 6, 16 and 23 requests carried.</summary>
    public TouchedRange RegisterValuesWritten => Bounds(_valueBounds, 0);

    private static int[] NewBounds()
    {
        var bounds = new int[((int)ModbusTable.InputRegisters + 1) * 2];
        for (int i = 0; i < bounds.Length; i += 2)
        {
            bounds[i] = int.MaxValue;
            bounds[i + 1] = -1;
        }
        return bounds;
    }

    private static TouchedRange Bounds(int[] bounds, int at)
    {
        int last = Volatile.Read(ref bounds[at + 1]);
        return last < 0 ? TouchedRange.None : new TouchedRange(Volatile.Read(ref bounds[at]), last);
    }

    private void Watch(in ModbusRequest request)
    {
        if (request.Status == RequestStatus.OutOfSpec)
        {
            Interlocked.Increment(ref _outOfSpecRequests);
        }
        Widen(_readBounds, request.ReadSpan);
        Widen(_writeBounds, request.WriteSpan);
        for (int i = 0; i < request.RegisterValueCount; i++)
        {
            Widen(_valueBounds, 0, request.RegisterValue(i), request.RegisterValue(i));
        }
    }

    private static void Widen(int[] bounds, AddressSpan span)
    {
        if (!span.IsEmpty && span.Count > 0)
        {
            Widen(bounds, (int)span.Table * 2, span.Start, span.Last);
        }
    }

    private static void Widen(int[] bounds, int at, int first, int last)
    {
        int seen = Volatile.Read(ref bounds[at]);
        while (first < seen)
        {
            int was = Interlocked.CompareExchange(ref bounds[at], first, seen);
            if (was == seen)
            {
                break;
            }
            seen = was;
        }
        seen = Volatile.Read(ref bounds[at + 1]);
        while (last > seen)
        {
            int was = Interlocked.CompareExchange(ref bounds[at + 1], last, seen);
            if (was == seen)
            {
                break;
            }
            seen = was;
        }
    }

    private void ResetWatch()
    {
        Interlocked.Exchange(ref _outOfSpecRequests, 0);
        foreach (var bounds in (ReadOnlySpan<int[]>)[_readBounds, _writeBounds, _valueBounds])
        {
            for (int i = 0; i < bounds.Length; i += 2)
            {
                Volatile.Write(ref bounds[i], int.MaxValue);
                Volatile.Write(ref bounds[i + 1], -1);
            }
        }
    }
}
