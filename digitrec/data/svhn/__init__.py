"""SVHN format 1 (full house-number images with per-digit boxes): download, labels, preprocessing
and the HDF5 cache the training loader reads.

Layout under `root` (default `<data_dir>/svhn`): `<split>/1.png, 2.png, ...` and
`<split>/digitStruct.mat` for split in train, test, extra, exactly as the official archives
extract; `cache/<split>-<key>.h5` holds the preprocessed images (see `build_cache`; a read-only
root caches under ~/.cache/digitrec instead). A split folder with PNGs but no digitStruct.mat
takes its labels from the JSON form (`split_records`): `<split>/labels.json[.gz]`,
`<root>/labels/<split>.json[.gz]` or `<root>/../labels/<split>.json[.gz]` — so a subset of real
SVHN images (e.g. `$DIGITREC_DATA_DIR/svhn/real`, labels in `svhn/labels/`) works as a root.

`digitStruct.mat` (MATLAB v7.3) is read and written by `digitrec.data.digitstruct` (re-exported
here: `Record`, `read_digit_struct`, `write_digit_struct`), which checks every byte it trusts.

download (the official archives), labels (digitStruct.mat or JSON), crops (the paper's
preprocessing), cache (the HDF5 cache).
"""

from digitrec.data.digitstruct import (  # noqa: F401  (the format's names, re-exported)
    FIELDS,
    DigitStructError,
    Record,
    read_digit_struct,
    read_digit_struct_slow,
    write_digit_struct,
)
from digitrec.data.svhn.cache import (  # noqa: F401
    CACHE_ARRAYS,
    _progress,
    _read_image,
    build_cache,
    cache_dir,
    cache_path,
    load_cache,
)
from digitrec.data.svhn.crops import (  # noqa: F401
    Preprocessing,
    crop_box,
    crop_resize,
    encode_labels,
    expand_box,
    preprocess,
    union_box,
)
from digitrec.data.svhn.download import (  # noqa: F401
    ARCHIVES,
    BASE_URLS,
    RENDERED_MARKER,
    SPLITS,
    ensure_split,
    extract,
    log,
)
from digitrec.data.svhn.labels import json_labels_for, read_json_labels, split_records  # noqa: F401
