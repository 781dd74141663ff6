using System.Diagnostics;
using System.Text;
using EdgeShield.Policy;
using EdgeShield.Protocols.Capture;
using EdgeShield.Protocols.Modbus;

namespace EdgeShield.Gateway;

/// <summary>
/// <c>audit: { pcap: { path, max-mb } }</c>: refused and malformed client frames written to a
/// rotating pcapng file that Wireshark opens, each as a TCP segment from the client's address and
/// port to the listener's, at the time of its audit event, with the event as the packet comment.
/// </summary>
/// <remarks>
/// The frame path only copies the frame (at most 266 bytes; 1024 with an S7 listener) into a free slot of a fixed ring under
/// a short lock and wakes the writer: no allocation, no I/O, no waiting. A dedicated thread formats
/// and writes the blocks (<see cref="PcapngWriter"/>, rotating to <c>PATH.1</c>) and flushes after
/// each batch. When the ring is full the frame is not captured but counted
/// (<see cref="GatewayCounters.CapturesDropped"/>) and a <c>pcap-dropped</c> service event says how
/// many, at most once a second; a write error (disk full) is counted and audited the same way.
/// Nothing is lost silently.
/// </remarks>
public sealed class ForensicsCapture : IDisposable
{
    /// <summary>Bytes of one frame kept without S7 listeners: a whole Modbus TCP ADU; a malformed frame is cut there.</summary>
    public const int MaxFrameBytes = ModbusLimits.MaxVendorTcpAduLength;

    /// <summary>
    /// Bytes of one frame kept when a listener speaks S7comm: a whole S7 PDU of the largest negotiated size (960)
    /// in one TPKT/COTP DT (7 bytes), rounded up; a malformed frame is cut there.
    /// </summary>
    public const int MaxS7FrameBytes = PcapngWriter.MaxPayloadBytes;

    private static readonly TimeSpan DropReportInterval = TimeSpan.FromSeconds(1);

    private readonly Slot[] _ring;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly PcapngWriter _writer;
    private readonly GatewayCounters _counters;
    private readonly IAuditSink _audit;
    private readonly Thread _thread;
    private readonly byte[] _comment = new byte[256];
    private long _head;
    private long _tail;
    private volatile bool _stopping;

    private readonly int _maxFrameBytes;

    private ForensicsCapture(PcapAuditConfig config, PcapngWriter writer, GatewayCounters counters, IAuditSink audit, int ringSlots, int maxFrameBytes)
    {
        _maxFrameBytes = maxFrameBytes;
        Path = config.Path;
        _writer = writer;
        _counters = counters;
        _audit = audit;
        _ring = new Slot[ringSlots];
        for (int i = 0; i < _ring.Length; i++)
        {
            _ring[i] = new Slot(maxFrameBytes);
        }
        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "edgeshield pcap" };
        _thread.Start();
    }

    /// <summary>The pcapng file being written.</summary>
    public string Path { get; }

    /// <summary>
    /// Creates (or truncates) the file and starts the writer. Throws <see cref="IOException"/> or
    /// <see cref="UnauthorizedAccessException"/> when the file cannot be created.
    /// </summary>
    /// <param name="maxFrameBytes">
    /// Bytes kept of one frame: <see cref="MaxFrameBytes"/> (a Modbus ADU), or <see cref="MaxS7FrameBytes"/> when a
    /// listener speaks S7comm, whose refused PDUs are longer; the ring holds <paramref name="ringSlots"/> of them.
    /// </param>
    public static ForensicsCapture Start(PcapAuditConfig config, GatewayCounters counters, IAuditSink audit, int ringSlots = 256, int maxFrameBytes = MaxFrameBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(ringSlots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameBytes, MaxFrameBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxFrameBytes, MaxS7FrameBytes);
        var writer = new PcapngWriter(config.Path, Math.Max(config.MaxBytes, 1024));
        return new ForensicsCapture(config, writer, counters, audit, ringSlots, maxFrameBytes);
    }

    /// <summary>
    /// Queues one client frame for the file; called on the frame path, so it only copies.
    /// <paramref name="sequence"/> is the TCP sequence number to show (docs/TOOLING.md).
    /// </summary>
    public void Record(ReadOnlySpan<byte> frame, in AuditEvent auditEvent, UInt128 destination, ushort destinationPort, uint sequence)
    {
        lock (_lock)
        {
            if (_head - _tail >= _ring.Length)
            {
                _counters.CountCaptureDropped();
                return;
            }
            var slot = _ring[_head % _ring.Length];
            frame = frame[..Math.Min(frame.Length, _maxFrameBytes)];
            frame.CopyTo(slot.Bytes);
            slot.Length = frame.Length;
            slot.Event = auditEvent;
            slot.Destination = destination;
            slot.DestinationPort = destinationPort;
            slot.Sequence = sequence;
            _head++;
        }
        _wake.Release();
    }

    private void WriteLoop()
    {
        long reportedDrops = 0;
        long lastReport = 0;
        bool writeFailed = false;
        while (true)
        {
            _wake.Wait(250);
            int written = 0;
            while (true)
            {
                Slot slot;
                lock (_lock)
                {
                    if (_tail == _head)
                    {
                        break;
                    }
                    slot = _ring[_tail % _ring.Length];
                }
                // The slot is ours until the tail moves past it: producers only fill slots behind the tail.
                if (TryWrite(slot, ref writeFailed))
                {
                    written++;
                }
                lock (_lock)
                {
                    _tail++;
                }
            }
            if (written > 0)
            {
                TryFlush(ref writeFailed);
            }
            long drops = _counters.CapturesDropped;
            if (drops != reportedDrops && Stopwatch.GetElapsedTime(lastReport) >= DropReportInterval)
            {
                _audit.Write(AuditEvent.Service("pcap-dropped", $"{drops - reportedDrops} denied or malformed frames not written to {Path} (capture queue full or write failed); {drops} in all"));
                reportedDrops = drops;
                lastReport = Stopwatch.GetTimestamp();
            }
            if (_stopping && Volatile.Read(ref _tail) == Volatile.Read(ref _head))
            {
                return;
            }
        }
    }

    private bool TryWrite(Slot slot, ref bool failed)
    {
        ref readonly var e = ref slot.Event;
        int rotations = _writer.Rotations;
        try
        {
            int commentLength = FormatComment(e, _comment);
            long timestampNs = (e.Time.Ticks - DateTime.UnixEpoch.Ticks) * 100;
            _writer.Write(timestampNs, e.Source.Value, e.SourcePort, slot.Destination, slot.DestinationPort, slot.Sequence,
                slot.Bytes.AsSpan(0, slot.Length), _comment.AsSpan(0, commentLength));
            _counters.CountCaptured();
            failed = false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _counters.CountCaptureDropped();
            if (!failed)
            {
                failed = true;
                _audit.Write(AuditEvent.Service("pcap-failed", $"cannot write {Path}: {ex.Message}; frames are counted as dropped until a write succeeds"));
            }
            return false;
        }
        if (_writer.Rotations != rotations)
        {
            _audit.Write(AuditEvent.Service("pcap-rotated", $"{Path} reached max-mb; the previous file is {Path}.1"));
        }
        return true;
    }

    private void TryFlush(ref bool failed)
    {
        try
        {
            _writer.Flush();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            if (!failed)
            {
                failed = true;
                _audit.Write(AuditEvent.Service("pcap-failed", $"cannot write {Path}: {ex.Message}"));
            }
        }
    }

    /// <summary>The packet comment: the audit event in one line, e.g. <c>denied 01: function not allowed; rule hmi reads; listener hmi-plc1</c>.</summary>
    /// <remarks>Appended piece by piece rather than through an interpolated handler, whose generic formatting boxes in unoptimised JIT tiers.</remarks>
    private static int FormatComment(in AuditEvent e, Span<byte> destination)
    {
        int written = Append(destination, 0, AuditEvents.Name(e.Kind));
        if (e.ExceptionCode != 0 && written + 3 <= destination.Length)
        {
            destination[written++] = (byte)' ';
            destination[written++] = (byte)"0123456789ABCDEF"[e.ExceptionCode >> 4];
            destination[written++] = (byte)"0123456789ABCDEF"[e.ExceptionCode & 0xF];
        }
        written = Append(destination, written, ": ");
        written = Append(destination, written, e.Reason);
        if (e.Rule is not null)
        {
            written = Append(destination, written, "; rule ");
            written = Append(destination, written, e.Rule);
        }
        written = Append(destination, written, "; listener ");
        return Append(destination, written, e.Listener);
    }

    /// <summary>Appends <paramref name="text"/> as UTF-8 if it fits whole; a comment is cut rather than overrun.</summary>
    private static int Append(Span<byte> destination, int at, string? text) =>
        text is not null && Encoding.UTF8.TryGetBytes(text, destination[at..], out int length) ? at + length : at;

    /// <summary>Writes what is queued, then closes the file.</summary>
    public void Dispose()
    {
        _stopping = true;
        _wake.Release();
        // A writer stuck in the file system (a hung mount) is left to the process's exit rather than
        // having its file closed under it, which would throw on its thread.
        if (_thread.Join(TimeSpan.FromSeconds(5)))
        {
            _writer.Dispose();
            _wake.Dispose();
        }
    }

    private sealed class Slot(int maxFrameBytes)
    {
        public readonly byte[] Bytes = new byte[maxFrameBytes];
        public int Length;
        public AuditEvent Event;
        public UInt128 Destination;
        public ushort DestinationPort;
        public uint Sequence;
    }
}

/// <summary>What one connection needs to put its frames in the <see cref="ForensicsCapture"/>: the listener's end of it.</summary>
internal sealed class ForensicsTap(ForensicsCapture capture, UInt128 localAddress, ushort localPort)
{
    /// <summary>A tap for a connection of <paramref name="listener"/>, or null when the listener captures nothing.</summary>
    public static ForensicsTap? For(GatewayListener listener, System.Net.Sockets.Socket client)
    {
        if (listener.Capture is not { } capture || client.LocalEndPoint is not System.Net.IPEndPoint local)
        {
            return null;
        }
        return new ForensicsTap(capture, SourceAddress.From(local.Address).Value, (ushort)local.Port);
    }

    /// <summary>
    /// Queues <paramref name="frame"/>, which starts <paramref name="streamOffset"/> bytes into the
    /// client's stream: its TCP sequence number is 1 + that offset, as if the SYN took 0.
    /// </summary>
    public void Record(ReadOnlySpan<byte> frame, in AuditEvent auditEvent, long streamOffset) =>
        capture.Record(frame, auditEvent, localAddress, localPort, unchecked((uint)(1 + streamOffset)));
}
