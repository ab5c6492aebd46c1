/* Built against the stable ABI of Python 3.6: loads on any CPython 3.6+. */
#include "add.h"

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_limited", "stable ABI", -1, add_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__limited(void)
{
    return PyModule_Create(&definition);
}
