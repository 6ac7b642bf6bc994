"""Font families for the rendered stand-in, fetched once: `digitrec-data fonts`.

A reader trained on two or three font families reads those families; real house numbers come in
hundreds. `ensure_fonts` fetches the pinned `@fontsource/*` packages (open-licensed Google Fonts
families, mostly SIL OFL 1.1) from the npm registry — each tarball checked against the registry's
sha512 `integrity`, resumable, every network wait bounded (DIGITREC_NET_TIMEOUT, see
digitrec/data/download.py) — and extracts the Latin, normal-style WOFF files of the listed weights
into `<data_dir>/fonts/<family>-<weight>.woff` (~/.cache/digitrec/fonts when the data folder is
read-only). Nothing is committed; the renderer (digitrec/data/street.py) reads these beside the
machine's own fonts. The tarballs are deleted once their fonts are out (about 90 MB fetched, 4 MB
kept).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import tarfile
from pathlib import Path

from digitrec.data.download import (
    DownloadError,
    download,
    net_timeout,
    timeout_hint,
    user_cache,
    writable,
)
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

REGISTRY = "https://registry.npmjs.org/"
GIVE_UP = 3  # failed downloads in a row after which the registry counts as unreachable
SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")  # what the renderer loads (FreeType reads all four)

# (family, version, the registry's integrity of the tarball, its size in bytes, weights)
FAMILIES: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    (
        "roboto",
        "5.3.0",
        "sha512-BapRJOWYP+LZ21zp+wBQjfpPYKRoxc4LspJ/RLuI+HSMBD5u/X4O+ESDrSvEqDSy0rAl7GwBJ+09mdc16cVQ1Q==",
        4049049,
        ("400", "700", "900"),
    ),
    (
        "open-sans",
        "5.3.0",
        "sha512-V1bdMlGNyZrJwzrdusshMOw2YR0aqYDL7kOo9dkxUEKl8dFv66A9HLckOOXl572sG/7ohhDQrCrTFGSn9LZcSw==",
        2716883,
        ("400", "700"),
    ),
    (
        "lato",
        "5.3.0",
        "sha512-0WhF/4rhrw+ErIyneKvhHn2YAl+xf8GDtllgOgOzDmeaSlLQtjpChXaQOpWhG2BchQW0WJy2zLV12Hdg0ndOMw==",
        490999,
        ("400", "700", "900"),
    ),
    (
        "montserrat",
        "5.3.0",
        "sha512-iQPDtZOnmM5ih4JBGaMSXisRap0ixb9bAUw2hDtY7EjVfaqiiNlKtVuJl9XclxUwtwMMHNcWXfQR6zI9x05+Tg==",
        3080222,
        ("400", "700", "900"),
    ),
    (
        "oswald",
        "5.3.0",
        "sha512-16r2aHActe0pH+9FLdk/74/YxXM7HpGak05kAzx3RvSToiJwGvyhv6GvckPz+YuZmvL1nxWbEop2jAXRcXYPRg==",
        565176,
        ("400", "700"),
    ),
    (
        "source-sans-3",
        "5.3.1",
        "sha512-O3YxvbotUOgYI2Zx0bBcEMNjnwitRf9P2+9pd54sMoux1NHrdXnMwZusw2P78lFhEzOPN4glOEQmX0ASaS68uA==",
        2924769,
        ("400", "700", "900"),
    ),
    (
        "raleway",
        "5.3.0",
        "sha512-BTWr1I14Ji0DWpS/KCIq/CXcvxXWgMO73gynWpbYv7A5wlPhLevozgRmdPJvZmUf0fhH+Lju+F4nigJ6Ums24A==",
        2494226,
        ("400", "700", "900"),
    ),
    (
        "pt-sans",
        "5.3.0",
        "sha512-qisFKuquwSWlELeuQHQldOa4oSxDAOFpak2hj3FjFcdo4eCUGV0trhIBk3qt+Py50L8JKWHKnnL7/JPxRH0TPw==",
        717884,
        ("400", "700"),
    ),
    (
        "merriweather",
        "5.3.0",
        "sha512-9LpPsNTYzRALj468Uj1K9Usl5eXk991L/kKmcpdWbTF1na9NfMyAXMgUABlMReViU1MYBz9kJ8jEzEOtX9qGDg==",
        4730247,
        ("400", "700", "900"),
    ),
    (
        "noto-sans",
        "5.3.0",
        "sha512-fBCog2PY7DiVVTEEqtI/Qdinx/knobHYfoGpjFXdfBX5RoJaBp1Prw2G75p0OIsdlMZg3cLo0c+YbIUYOxnQJw==",
        6927031,
        ("400", "700", "900"),
    ),
    (
        "ubuntu",
        "5.3.0",
        "sha512-LsjJXgE430QLs8LKfn1RIFbbdGAiZBU1gao8ASa4Z2kGNGh7lMb7Rzx09v3bLLuuK+3XA/JSLgPWTAbLD6r1fg==",
        1854897,
        ("400", "700"),
    ),
    (
        "playfair-display",
        "5.3.0",
        "sha512-uJSABalvdWc10fEPppQjQocamT21LEyRfzzWfRfqbkPz+sRv+kKpYDKyluBUskvJREkJTos9epj1WjQROGu99Q==",
        1438428,
        ("400", "700", "900"),
    ),
    (
        "roboto-condensed",
        "5.3.0",
        "sha512-Vbh5pesre/M/Jspd10btdKRqLSTe3yn4l6B2tXHGElCeASfA7Pgdpu1mb8wTG8E72J4Xk6FUfqnSe46UN2QAog==",
        2790034,
        ("400", "700", "900"),
    ),
    (
        "roboto-slab",
        "5.3.0",
        "sha512-nrl4sOt5OIoMV3VecGVOnNAADU/8vz6+CLtLr4cCAf106hVtSLCTObPN8Z2KdZ03U01UDvgIp3hsu2TX3jen6w==",
        1107358,
        ("400", "700", "900"),
    ),
    (
        "roboto-mono",
        "5.3.0",
        "sha512-yhwplHMHW9dCk+1pZuERfcJe+K3rosGVZEoK0XktkxRSqQ9qsipSwwiuW2/8Qmtp9lzu3Ixa/ie4BMH3i8CkZQ==",
        1726476,
        ("400", "700"),
    ),
    (
        "bebas-neue",
        "5.3.0",
        "sha512-nCxMEb9Bg9sjNWm9TIOsvHKDMLRUfEZPWpLgYu6m9KavZZVSA/WoHzI5wROwqA+eNwEi/PNBAcB5Co7HA3S0Cw==",
        47974,
        ("400",),
    ),
    (
        "anton",
        "5.3.0",
        "sha512-OR1D5n124n2XRs66SbX7IjcOSptljEJE8FcDNnlni2y1/M6KpTx7cU2PIWzTSsBj4WFkHPw24On8qw3qkQZuTw==",
        115630,
        ("400",),
    ),
    (
        "archivo-black",
        "5.3.0",
        "sha512-7EsTIQ+Blf96ktpzTUpI7msi+u9/AJxM/GZxOSkEubVd1jSTrFSTNxMgfpX/8rQsjZ+19a+qvRbtcTEp5J/72g==",
        61399,
        ("400",),
    ),
    (
        "fjalla-one",
        "5.3.0",
        "sha512-KYJMzU/5Ab7cD7lMiSM8SlqYSuWIb7GOKLH408VfeTZ9JT13j6ctuIbjFYmgQlNYJRVxDf/fxo0TAH9bt/YhMw==",
        168507,
        ("400",),
    ),
    (
        "russo-one",
        "5.3.0",
        "sha512-loHnqTq6D+H2WQdOB2pnAeCHbbsGqobmxnxU79MNFKjPWV2TPXdc78dbbkOAcWuKWDEY+FNXZFZ1nhaQvCWNAw==",
        44661,
        ("400",),
    ),
    (
        "teko",
        "5.3.0",
        "sha512-Kkc63jui7yWWSX0mYEhakA6vi5sK0UlTPn+ucNacqBYQ5flFpj2I/TJ8Vo3JlR9RG9kzUxfjAo6V/do7O+Vn5Q==",
        526677,
        ("400", "700"),
    ),
    (
        "barlow-condensed",
        "5.3.0",
        "sha512-RA7MmIx0v3eQ6Gcf74qLVLOwLB0GpPOzx+eU9iG/AmCnSJGcIWYeU8y6CEMGZ210MGwGg5CZhzLkkvyZdTTk1g==",
        1430864,
        ("400", "700", "900"),
    ),
    (
        "libre-baskerville",
        "5.3.0",
        "sha512-IA6OLq36/JWMX70Fha15sri2qWsijFh7hgdDXCRZHjKUHtWarLQoiGilvm7iMqm7HiYFEv9acF3+IuRHO9kUiA==",
        811084,
        ("400", "700"),
    ),
    (
        "crimson-text",
        "5.3.0",
        "sha512-W1kLgOlsCD/8DhUNECgYvyx86+t3wAvA0w09juD3XtmwAtV6vuSEwijN4q8fnQ1LgQWV377jQiL8dpSYwLnoAw==",
        608213,
        ("400", "700"),
    ),
    (
        "cinzel",
        "5.3.0",
        "sha512-KEOYTsrRppW0uRIPWBDPrQgunCS6f8u4nzZxYRBfo9SCknKojLYjK7B0ZoVmJhyVLefz271ZQRF9EOpHZlfhRw==",
        294069,
        ("400", "700", "900"),
    ),
    (
        "abril-fatface",
        "5.3.0",
        "sha512-voKCJEhGGZNdlk+OS3uFRSDV/HWbs6TAy7qKe9wXq96Uzwadfksyk5eyXLa1T5FkEazBgpHRMRSFBKfA3rbKbg==",
        54881,
        ("400",),
    ),
    (
        "alfa-slab-one",
        "5.3.0",
        "sha512-J/ANFZ7S9CbZClr/QhMjmBtpFmmKipVkEXHj20aurR5uqJPCBChVPJn1/kx6vtrwnfnDY0kQaYSTYasSt4GruA==",
        89461,
        ("400",),
    ),
    (
        "bree-serif",
        "5.3.0",
        "sha512-fdMEHTOCpkPM8udHVhon42rEHCJBUO5C7NrM9MT8bh22G834Y4wNY3Q2+UMtbFMnpGhtq5Iuq8l233QfhzdJTQ==",
        46341,
        ("400",),
    ),
    (
        "arvo",
        "5.3.0",
        "sha512-BV8Exol50MVqbu3CfLYt7YKP150FnXb5lRpVxQ0es33nUdZ3Ma0wO2F1klXv5ROY9p4vZGH27O4lnD0fYLjdww==",
        130908,
        ("400", "700"),
    ),
    (
        "josefin-sans",
        "5.3.0",
        "sha512-N2xY1l8gBCNrlRa0tMnjUtbSJb/rqWmPLgLSMq6H+EY2/uerAHtbyoHsQQKwhMA8hJat7S+OSk6saxGMceKKvA==",
        862053,
        ("400", "700"),
    ),
    (
        "titillium-web",
        "5.3.0",
        "sha512-+nO3ACtHoBgBgq5rzKYImyJqcbRR5cG7D5O73Iu9qMEVlpQ4KVpdDs+XJexZ6Tgcek4xSlkCI82Xd3yLNF++6w==",
        495976,
        ("400", "700", "900"),
    ),
    (
        "exo-2",
        "5.3.0",
        "sha512-jVI6qXPPuV1Fne7m2Hpyc9rTt4O7ZIo+wsUZZzAW+u/iHem4CyWXXCGUoSw3utZUW82/bsGVQO9yO+hDsjZH8A==",
        2167279,
        ("400", "700", "900"),
    ),
    (
        "orbitron",
        "5.3.0",
        "sha512-+BhPsbUAo/AF7sRcf+TEexm+EWWkgTiR9Zwb7AhYIPkc5oplfvw0C45Oc2xlKPhwVEmxG8hHuA6/Ansbl+Bc6w==",
        93070,
        ("400", "700", "900"),
    ),
    (
        "rajdhani",
        "5.3.0",
        "sha512-oBJgSIibWJvVBKseme1JczqPLoDHN97LHti4uh0LjfcJqQoVmnQQlRKIpEjTJV559rmVQ6qbVZZwKwk2wkBTtw==",
        897260,
        ("400", "700"),
    ),
    (
        "saira-condensed",
        "5.3.0",
        "sha512-e5ZTpIy/pE8CbB23mpm1b+dCmeapNheSrtQDXtbfDbGpm1r2oIfs5TzTpY2nzETEwei3DEFL9smm0rmFURzJtw==",
        623057,
        ("400", "700", "900"),
    ),
    (
        "staatliches",
        "5.3.0",
        "sha512-vYQgZ76FapaXZeiZQLUqy49+XmpyPLNgOsmqqqyX8pMFvb+rdODYDtc/vIgO/g5oTsESnSoD85DQozd8D6mUEA==",
        53529,
        ("400",),
    ),
    (
        "inter",
        "5.3.0",
        "sha512-RofMylZmjlJEfELXeNHFWBRcSs75rGU/6bV2S2jfnvv/3rPXPGe0LgUJTklcHZ9lM4OZmAVFhcJPnACfb91A3g==",
        4050993,
        ("400", "700", "900"),
    ),
    (
        "work-sans",
        "5.3.0",
        "sha512-3cKV28+bEiLGdyOl0VgEGCFWE1XdZJu/K+nH4Jt76XC3T//XrRtm2EF7jA61GSMIy8sYp6ZFTE01nD3lLaBV9A==",
        1656011,
        ("400", "700", "900"),
    ),
    (
        "fira-sans",
        "5.3.0",
        "sha512-z1SKSG7eRhm3srlb7rQ3j77QP4TP7OFxCZ4wUWhCdt+3hOF9K0AyvybpAsz6+JWNcCVV7AqC7dbOT3e67P2r5A==",
        4430621,
        ("400", "700", "900"),
    ),
    (
        "ibm-plex-sans",
        "5.3.0",
        "sha512-CbE4CbbEEZJX860XyUiRpsksXIQR8Rp2XDva2VO53NJox9tVNtusrysd2x5YkUEY3ErQ66W1IiiQL8/wihhw5w==",
        2324173,
        ("400", "700"),
    ),
    (
        "ibm-plex-mono",
        "5.3.0",
        "sha512-eTgnZjZEGk1QtD3ZstF+Vclo2HLAni8YMy34/DxllwZvyz1lR/1RF/xTiAquOBO7MvqBx8D2Ig2WCPMVfdZu7Q==",
        1344435,
        ("400", "700"),
    ),
    (
        "space-grotesk",
        "5.3.0",
        "sha512-ksnGizDPXIDuvqcTYTSrmZ+evx9sDlS8rp7+42BQ7wU+spt3twEoXfbJz672C+5CLg6VeUQwRy5RXshWb67LcQ==",
        325107,
        ("400", "700"),
    ),
    (
        "dm-serif-display",
        "5.3.0",
        "sha512-ecRclUcYeto9fB7ghkB36H4MtUoaUYFjjornWYYeLCMHzaWEDPk2kIWgZOq0mKBNRxclRSieKcFeLonlMYDTKg==",
        137292,
        ("400",),
    ),
    (
        "old-standard-tt",
        "5.3.0",
        "sha512-9cXU8XWqw4Pz9/9Lf6Otf1GPc0y17d96/nP9tzs4PLlq1IFMIxXszL3OLldaoyAn5YGr1r+tIXr0rlbgIeCYrg==",
        477545,
        ("400", "700"),
    ),
    (
        "cormorant-garamond",
        "5.3.0",
        "sha512-weuGsCirGVWBWqpt6YUp0yLThTe4G8YO45noq8wxeJCRvEpq5lFrxNMFSTxcyOyV5k5otzJ8guDzYegdYlcLMQ==",
        1784339,
        ("400", "700"),
    ),
    (
        "courier-prime",
        "5.3.0",
        "sha512-KIi1k4VG1Wv+/CGpb1AUpLkUuOAQA6zmvthqxOZGN0AV8BEgQgbK7qAtquv14zsBJAY1bb5BHIEbWVFLgENh0w==",
        241987,
        ("400", "700"),
    ),
    (
        "special-elite",
        "5.3.0",
        "sha512-fOQ9XU8m4KnqzcLibAXCxTsKzbxePNDjPqVss5GSMcPVCY1TuCv+Wq8gm1ebqIR6XS1rhMbQ7ECP9ocKVEEpTA==",
        181019,
        ("400",),
    ),
    (
        "black-ops-one",
        "5.3.0",
        "sha512-kDqkJFtvMErjajEeMXv6nyIW3t6UKb5usW+1/sQox9vA5q8dyMpAdAW9tU6+aIWo6xIQlatqNrfUlrBdJu6D4A==",
        133899,
        ("400",),
    ),
    (
        "bungee",
        "5.3.0",
        "sha512-vKwbDE7yMrqfGxgFan+diPLwgWp9j4FGYaLm+OhUoqYO6Pr02QIi/p0KiTW0E/7uiXqfTd6cMj+/E4h2sc3Ocg==",
        73206,
        ("400",),
    ),
    (
        "righteous",
        "5.3.0",
        "sha512-xr3w0E1jtc7xoXLfgJrcaKqWjvh5XiAAthVLrl9v9HKC7TfwMy3nARytetfi2GIgo51+aWsEJ51Uyd3XEXbj/A==",
        52789,
        ("400",),
    ),
    (
        "permanent-marker",
        "5.3.0",
        "sha512-ZO/NtYW4SCc/iY8N3dmjWyDITcXJ/vhWZFgnwRcvzwCKKnScMrM/a2/6VHlsjCVuIgmPzNrCFbedEYhv+/jJBg==",
        74241,
        ("400",),
    ),
    (
        "kalam",
        "5.3.0",
        "sha512-FDkVoDfPDCSN/eO81FOYtUI67eMgpVBJmjBtAqSL0PmEhJyeFY2biC+CR+yEttksgXR9+swpFdYmQTyjwBq80Q==",
        720217,
        ("400", "700"),
    ),
    (
        "caveat",
        "5.3.0",
        "sha512-eHTfzQxFSW9ABERRLNruHoNJmKed2J7pqTUc5lp4a4POMgXGKpxmWj3d9Hz10kmAg6iuTTLe6UagbA4bnsmfQw==",
        1241035,
        ("400", "700"),
    ),
    (
        "league-gothic",
        "5.3.0",
        "sha512-gqedetX+UlaiJgLiPnOzWGB1sY3OtNhS8YMjTy2D73AcsagIqpdIizssr1MStcUYf3D/zzanECuXawIgMGZxDg==",
        55815,
        ("400",),
    ),
    (
        "archivo-narrow",
        "5.3.0",
        "sha512-fK2Y7PdIP23+t5Dp7gh9n94zxTCdHD6M955aJ8QzR6RvW+5WgmryKySEvaCUAeSLXzA113hyW0BwEHHxHADX7Q==",
        504181,
        ("400", "700"),
    ),
    (
        "pathway-gothic-one",
        "5.3.0",
        "sha512-r2++lTyUa/wxgxiMcQYvhx3G5Q8eFuk6mitIw60ZJeqXVKsjxF9ZJs1Q4rFURVtwXbtEQVPbK2AOuEcF1kBahw==",
        50841,
        ("400",),
    ),
    (
        "big-shoulders-display",
        "5.3.0",
        "sha512-d4+Tcsq/WfoKeqWfB6wFdeNDsSYYnilJbSNNpf5w53MlWrGHAc9YvkAjC6id6PgFDiGaFKsXfP0RFAQtpt0bog==",
        608282,
        ("400", "700", "900"),
    ),
    (
        "chivo",
        "5.3.0",
        "sha512-bPZQPY1qQ5jOd/UN/yucUbNu7O1xaY6bmE+ctMJrXFIiw6qN5qq1f4xrH6GFPIKTnmMDYWy06lIzDAh23crrEw==",
        1335438,
        ("400", "700", "900"),
    ),
    (
        "karla",
        "5.3.0",
        "sha512-zHBkxMumwFE+K4RgHQAv2xH0O2lAX9y4zPun5JEFZyNQQclZ5Oz/XvByE3CB5+rnxKEV5BXlZShIEfz0VILDmQ==",
        658527,
        ("400", "700"),
    ),
    (
        "nunito",
        "5.3.0",
        "sha512-vw9TaTQJ/zpEpKrsODuPmOvaVjXgdda6B+xXA4YqjrdeJ62MLgVoDerdRXFQHyBnSCt2yQ2nHKCHPP/Pv7Xq4Q==",
        2054861,
        ("400", "700", "900"),
    ),
    (
        "poppins",
        "5.3.0",
        "sha512-cms1nM7U6SN8epIV1WMVOV8VsA645aSm3wHfzIQnkk188U341ThbJGSl2Sv54V29gnDbT2arMPfLzvVIIVCceQ==",
        2325037,
        ("400", "700", "900"),
    ),
    (
        "zilla-slab",
        "5.3.0",
        "sha512-xbdDx5OESJDQqp3GIp4pjBgI+qpcg4AxnHLN15ekfJbG+ZYaOXg3uBjDpYlkuPQpey91afxHBNaqZgzluJ2FWA==",
        801828,
        ("400", "700"),
    ),
    (
        "eb-garamond",
        "5.3.0",
        "sha512-VplwHpB8FLuzl+4G5LDci1b3Z4SghiuXH8XEgaxjnOb5aue5mEt1njmDKeO6iyLeGa73LffU7PC7hzncLRx0ZA==",
        3065511,
        ("400", "700"),
    ),
    (
        "playball",
        "5.3.0",
        "sha512-NDRkbShTDmtNyOwVfMFoVWFha9rzm62vlqaPUzJSS0S++nF1Ih/X55CR/8nxrgvcswOYAJBSMvRVpgPiEbd6wg==",
        117465,
        ("400",),
    ),
    (
        "great-vibes",
        "5.3.0",
        "sha512-1w60cXzXnC9V4y943po8044O1mqRQBiTTK75h7OpZE+1VQtx+KlAAzoIyEE5KNzu05gUpxaCQg7cbL7ITSwegQ==",
        320751,
        ("400",),
    ),
    (
        "pacifico",
        "5.3.0",
        "sha512-bWv0fHR1n36p7scRn+maaEaVeQCOq9yvfVfjyAeUzKrK4Y/3qiRAEj4hJgfxj/sjgZZGkeHyKPrbWdDaZtpCVw==",
        231921,
        ("400",),
    ),
    (
        "lobster",
        "5.3.0",
        "sha512-jt+RDk/8Sstl1Omhox62gTbvRSLbh06kn5BNfDFgf4rNuDPHF+19eWYFxzq5FsdkalbRJNtc5p5C3qE0+leNVg==",
        214571,
        ("400",),
    ),
)


def tarball_url(family: str, version: str) -> str:
    return f"{REGISTRY}@fontsource/{family}/-/{family}-{version}.tgz"


def font_dir(data_dir: str | Path) -> Path:
    """`<data_dir>/fonts`, or `~/.cache/digitrec/fonts` when the data folder is read-only."""
    return Path(data_dir) / "fonts" if writable(data_dir) else user_cache("fonts")


def integrity(data: bytes) -> str:
    """The npm registry's integrity string (sha512, base64) of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def ensure_fonts(
    data_dir: str | Path, families=FAMILIES, timeout: float | None = None, progress: bool = True
) -> list[Path]:
    """Fetch and extract every family not yet in `<data_dir>/fonts`; the font files there.

    `timeout` bounds each connect and read (default $DIGITREC_NET_TIMEOUT, else 20 s); after
    GIVE_UP failed downloads in a row the registry counts as unreachable: the rest is skipped.
    Raises DownloadError naming the families that could not be fetched (the others are kept)."""
    t = net_timeout(timeout)
    out = font_dir(data_dir)
    failures = []
    in_a_row, slow, skipped = 0, False, 0
    for family, version, want, size, weights in families:
        targets = {w: out / f"{family}-{w}.woff" for w in weights}
        if all(p.is_file() for p in targets.values()):
            continue
        if in_a_row >= GIVE_UP:  # not tried: the registry looks unreachable
            skipped += 1
            continue
        tgz = out / "npm" / f"{family}-{version}.tgz"
        try:
            download(tarball_url(family, version), tgz, size=size, timeout=t, progress=progress)
        except (OSError, DownloadError) as e:
            failures.append(f"@fontsource/{family}@{version}: {getattr(e, 'reason', None) or e}")
            in_a_row += 1
            slow = slow or getattr(e, "timed_out", False)
            log.warning("%s", failures[-1])
            continue
        in_a_row = 0
        try:
            data = tgz.read_bytes()
            if (got := integrity(data)) != want:
                tgz.unlink()
                raise DownloadError(f"{tgz.name}: integrity {got[:24]}…, expected {want[:24]}…")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for weight, target in targets.items():
                    member = f"package/files/{family}-latin-{weight}-normal.woff"
                    try:
                        blob = tar.extractfile(member)
                    except KeyError:
                        blob = None
                    if blob is None:
                        raise DownloadError(f"{tgz.name}: no {member} inside")
                    atomic_write_bytes(target, blob.read())
            tgz.unlink()
        except (OSError, DownloadError, tarfile.TarError) as e:
            failures.append(f"@fontsource/{family}@{version}: {getattr(e, 'reason', None) or e}")
    if failures:
        gave_up = (
            f"; stopped after {GIVE_UP} failed downloads in a row (is {REGISTRY} "
            f"reachable?), {skipped} more not tried"
            if skipped
            else ""
        )
        hint = f"; {timeout_hint(t)}" if slow else ""
        raise DownloadError(
            f"{len(failures) + skipped} of {len(families)} font packages could not "
            f"be fetched ({'; '.join(failures[:3])}{'; …' if len(failures) > 3 else ''})"
            f"{gave_up}; run digitrec-data fonts again to resume{hint}"
        )
    return font_files(data_dir)


def font_files(data_dir: str | Path) -> list[Path]:
    """The fonts `digitrec-data fonts` put in `<data_dir>/fonts` (none when it never ran)."""
    folder = font_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES)
