namespace EdgeShield.Simulators;

/// <summary>
/// The data of one unit id. Tables are materialised on first write, so a unit that is only read
/// (or a scan across all 256 unit ids) costs no memory; until then they read as their
/// deterministic initial values: coils 0, discrete input i = i % 2, holding 0, input register i = i.
/// Every access holds <see cref="Sync"/>.
/// </summary>
internal sealed class PlcUnit
{
    public const int MaxFifo = 31;

    public readonly Lock Sync = new();
    private readonly int _tableSize;
    private readonly int _fileWords;
    private byte[]? _coils;
    private byte[]? _discreteInputs;
    private ushort[]? _holding;
    private ushort[]? _input;
    private ushort[]? _files;
    public readonly ushort[] Fifo = new ushort[MaxFifo];
    public int FifoCount;

    public PlcUnit(int tableSize, int fileWords)
    {
        _tableSize = tableSize;
        _fileWords = fileWords;
        // The spec's FC 24 example queue (6.18).
        Fifo[0] = 0x01B8;
        Fifo[1] = 0x1284;
        FifoCount = 2;
    }

    public bool GetCoil(int address) => _coils is { } c && c[address] != 0;

    public void SetCoil(int address, bool value) => (_coils ??= new byte[_tableSize])[address] = value ? (byte)1 : (byte)0;

    public bool GetDiscreteInput(int address) => _discreteInputs is { } d ? d[address] != 0 : (address & 1) != 0;

    public void SetDiscreteInput(int address, bool value)
    {
        if (_discreteInputs is null)
        {
            _discreteInputs = new byte[_tableSize];
            for (int i = 1; i < _discreteInputs.Length; i += 2)
            {
                _discreteInputs[i] = 1;
            }
        }
        _discreteInputs[address] = value ? (byte)1 : (byte)0;
    }

    public ushort GetHolding(int address) => _holding is { } h ? h[address] : (ushort)0;

    public void SetHolding(int address, ushort value) => (_holding ??= new ushort[_tableSize])[address] = value;

    public ushort GetInput(int address) => _input is { } r ? r[address] : (ushort)address;

    public void SetInput(int address, ushort value)
    {
        if (_input is null)
        {
            _input = new ushort[_tableSize];
            for (int i = 0; i < _input.Length; i++)
            {
                _input[i] = (ushort)i;
            }
        }
        _input[address] = value;
    }

    /// <summary>File words are laid out file by file; <paramref name="index"/> is (file - 1) * records + record.</summary>
    public ushort GetFileWord(int index) => _files is { } f ? f[index] : (ushort)0;

    public void SetFileWord(int index, ushort value) => (_files ??= new ushort[_fileWords])[index] = value;
}
