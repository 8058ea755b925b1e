/* weft/common.h must compile alone, as C11 and as C++11 (see meson.build). */
#include <weft/common.h>

int weft_hc_common(void);
int weft_hc_common(void)
{
	int64_t (*now)(void) = weft_now;
	int (*version)(void) = weft_version;
	int64_t forever = WEFT_FOREVER;

	return (now != 0) + (version != 0) + (forever > 0) +
	       WEFT_VERSION_MAJOR + WEFT_VERSION_MINOR + WEFT_VERSION_PATCH;
}
