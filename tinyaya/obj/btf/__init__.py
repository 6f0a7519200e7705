"""BTF: the ``.BTF`` type section and the ``.BTF.ext`` program metadata (uapi linux/btf.h)."""
from ..errors import BtfError
from .dump import dump_raw, dump_type
from .ext import (
    BtfExt,
    CoreRelo,
    CoreReloKind,
    ExtFuncInfo,
    ExtLineInfo,
    describe_btf_ext,
    format_btf_ext,
    format_core_relo,
)
from .format import format_type, format_value, type_name
from .types import (
    BTF_MAGIC,
    Btf,
    BtfEnumValue,
    BtfKind,
    BtfMember,
    BtfType,
    BtfVarSecinfo,
)

__all__ = [
    "BTF_MAGIC", "Btf", "dump_raw", "dump_type", "BtfEnumValue", "BtfError", "BtfExt", "BtfKind", "BtfMember", "BtfType",
    "BtfVarSecinfo", "CoreRelo", "CoreReloKind", "ExtFuncInfo", "ExtLineInfo", "format_type",
    "format_value", "type_name", "describe_btf_ext", "format_btf_ext", "format_core_relo",
]
