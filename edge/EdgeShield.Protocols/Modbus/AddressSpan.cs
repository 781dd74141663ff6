namespace EdgeShield.Protocols.Modbus;

/// <summary>The four data tables of the Modbus data model (spec section 4.3).</summary>
public enum ModbusTable : byte
{
    None = 0,
    Coils,
    DiscreteInputs,
    HoldingRegisters,
    InputRegisters,
}

/// <summary>
/// The contiguous block of one table that a request reads or writes: 0-based wire addresses
/// <see cref="Start"/> to <see cref="Last"/> inclusive.
/// </summary>
public readonly record struct AddressSpan(ModbusTable Table, ushort Start, ushort Count)
{
    /// <summary>The request touches no table through this span.</summary>
    public bool IsEmpty => Table == ModbusTable.None;

    /// <summary>The last address touched; may exceed 65535 for an out-of-spec request, so it is an int.</summary>
    public int Last => Start + Count - 1;
}
