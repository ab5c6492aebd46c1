/* Single-phase init: PyInit_ returns the module (Python 2: init_ fills it). */
#include "add.h"

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_single", "single-phase init", -1, add_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__single(void)
{
    return PyModule_Create(&definition);
}
#else
PyMODINIT_FUNC
init_single(void)
{
    Py_InitModule("_single", add_methods);
}
#endif
