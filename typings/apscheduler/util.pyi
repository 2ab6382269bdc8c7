from typing import Final

class _Undefined: ...

undefined: Final[_Undefined]
