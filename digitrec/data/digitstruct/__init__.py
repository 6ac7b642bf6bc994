"""SVHN format 1's `digitStruct.mat`: a checked reader (fast and slow) and the writer.

`digitStruct.mat` is MATLAB v7.3, i.e. HDF5 in which every name, box group and box value is a
separate object reached through object references. Opening ~600,000 objects one by one through
h5py takes minutes, so `read_digit_struct` lets the HDF5 library walk the reference group once
(names → object addresses) and reads the values straight from the objects' headers (MATLAB and
h5py store these tiny arrays inline, "compact" layout). The fast reader trusts no byte it reads:
every address and length must stay inside the file and inside its header, headers must hold
exactly the messages they count, datatypes must be exactly MATLAB's (little-endian doubles,
uint16 characters, object references), element counts must match the data, no object may be
reached twice, and the records must be plausible (`record_problem`). Whatever it cannot vouch
for (another layout, or bytes that contradict the format: damage) is read with the plain h5py
walk (`read_digit_struct_slow`, also the reference the tests compare against), whose records
pass the same checks. Every error is a `DigitStructError` (a ValueError): one line that starts
with the file's path and says what was expected.
"""

# noqa: F401 below: the package's names, re-exported
from digitrec.data.digitstruct.fast import (  # noqa: F401
    _CLIP,
    _F64,
    _MAX_MESSAGES,
    _REF,
    _U16,
    _Damaged,
    _dataset_headers,
    _dataspace_sizes,
    _gather,
    _group_children,
    _layouts,
    _le,
    _matches,
    _messages,
    _ranges,
    _read_digit_struct_fast,
    _ref_addresses,
    _u,
    _Unsupported,
)
from digitrec.data.digitstruct.reader import read_digit_struct, read_digit_struct_slow  # noqa: F401
from digitrec.data.digitstruct.records import (  # noqa: F401
    _CHARS,
    _FLOATS,
    _MAX_ELEMENTS,
    FIELDS,
    MAX_PIXELS,
    DigitStructError,
    Record,
    _digit_struct_group,
    _one_line,
    _read,
    record_problem,
)
from digitrec.data.digitstruct.writer import write_digit_struct  # noqa: F401
