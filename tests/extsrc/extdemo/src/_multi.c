/* Multi-phase init (PEP 489) where it exists, 3.5+; single-phase before. */
#include "add.h"

#if PY_VERSION_HEX >= 0x03050000
static PyModuleDef_Slot slots[] = {{0, NULL}};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_multi", "multi-phase init", 0, add_methods,
    slots, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__multi(void)
{
    return PyModuleDef_Init(&definition);
}
#elif PY_MAJOR_VERSION >= 3
#error "Python 3.0 - 3.4 are not supported"
#else
PyMODINIT_FUNC
init_multi(void)
{
    Py_InitModule("_multi", add_methods);
}
#endif
