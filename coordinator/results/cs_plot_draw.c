/* cs_plot_draw.c - drawing the figures of cs_plot.c with cairo, in points. Series take Okabe and
 * Ito's colour-blind-safe palette ("Color Universal Design", 2008) in its order without black;
 * the heatmap's scale is viridis (matplotlib's, perceptually uniform and readable in grey), from
 * five of its stops. Text is 7 pt (ticks, values 6 pt) in the sans-serif face fontconfig
 * chooses, so a figure keeps its type size whatever its width. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cs_plot_int.h"

#define TICK_PT  6.5
#define LABEL_PT 7.5
#define LEFT     36.0 /* y tick labels and the y axis label */
#define GAP      8.0

/* Okabe-Ito: orange, sky blue, bluish green, blue, vermillion, reddish purple, yellow, black. */
static const double PALETTE[CS_PLOT_COLOURS][3] = {
        {0.902, 0.624, 0.000}, {0.337, 0.706, 0.914}, {0.000, 0.620, 0.451}, {0.000, 0.447, 0.698},
        {0.835, 0.369, 0.000}, {0.800, 0.475, 0.655}, {0.941, 0.894, 0.259}, {0.000, 0.000, 0.000}};

static void colour(cairo_t *cr, size_t i)
{
    const double *c = PALETTE[i % CS_PLOT_COLOURS];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

/* viridis at t in [0, 1]: linear between the stops at 0, 0.25, 0.5, 0.75, 1. */
static void viridis(double t, double rgb[3])
{
    static const double stop[5][3] = {{0.267, 0.005, 0.329},
                                      {0.231, 0.322, 0.545},
                                      {0.129, 0.569, 0.549},
                                      {0.369, 0.788, 0.384},
                                      {0.992, 0.906, 0.145}};
    double u = fmin(fmax(t, 0.0), 1.0) * 4.0;
    size_t i = u >= 4.0 ? 3 : (size_t)u;
    double f = u - (double)i;
    for (size_t k = 0; k < 3; k++) {
        rgb[k] = stop[i][k] + f * (stop[i + 1][k] - stop[i][k]);
    }
}

/* Text at (x, y): ax, ay the fraction of its extent left of and above the point (0.5 centres);
 * rotated a quarter turn anticlockwise when up. */
static void text(cairo_t *cr, double x, double y, const char *s, double pt, double ax, double ay,
                 bool up)
{
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    cairo_save(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, pt);
    cairo_text_extents(cr, s, &e);
    cairo_font_extents(cr, &fe);
    cairo_translate(cr, x, y);
    if (up) {
        cairo_rotate(cr, -M_PI / 2);
    }
    /* vertically by the font's ascent and descent, so labels share a baseline whatever their
     * letters */
    cairo_move_to(cr, -e.x_bearing - ax * e.width, fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

/* Ticks for [lo, hi]: a step of 1, 2 or 5 times a power of ten giving at most about n ticks;
 * lo and hi widened to multiples of it. */
static double ticks(double *lo, double *hi, int n)
{
    double span = *hi - *lo > 0 ? *hi - *lo : fabs(*hi) + 1.0;
    double raw = span / n, p = pow(10.0, floor(log10(raw))), step;
    step = raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    if (*hi <= *lo) {
        *hi = *lo + step;
    }
    return step;
}

/* The y axis of a plot area (x0, y0, pw, ph) over [lo, hi] with step: ticks, labels, grid and the
 * rotated label; then the frame. */
static void y_axis(cairo_t *cr, double x0, double y0, double pw, double ph, double lo, double hi,
                   double step, const char *label)
{
    char s[32];
    cairo_set_line_width(cr, 0.4);
    for (double v = lo; v <= hi + step * 1e-6; v += step) {
        double y = y0 + ph - (v - lo) / (hi - lo) * ph;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, x0, y);
        cairo_line_to(cr, x0 + pw, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        snprintf(s, sizeof(s), "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
        text(cr, x0 - 2.5, y, s, TICK_PT, 1.0, 0.5, false);
    }
    text(cr, 4, y0 + ph / 2, label, LABEL_PT, 0.5, 0.0, true);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.6);
    cairo_rectangle(cr, x0, y0, pw, ph);
    cairo_stroke(cr);
}

/* What a series' legend entry adds about its error bars: points of one seed are either drawn
 * with the bootstrap over items or, without per-item outcomes, have none. */
static const char *interval_note(const cs_plot_model *m, size_t i)
{
    if (m->no_interval[i]) {
        return " (1 seed, no interval)";
    }
    return m->item_interval[i] ? " (1 seed: CI over items)" : "";
}

/* The legend below a plot from y: one entry per series (with a mark), cols per line. Returns
 * its height. When draw is false only measures. */
static double legend(cairo_t *cr, const cs_plot_model *m, double w, double y, bool draw)
{
    size_t n = m->n_series + (m->kind == CS_PLOT_TASKS ? 1 : 0);
    size_t cols, longest = strlen("unquantized (baseline)");
    double cw;
    for (size_t i = 0; i < m->n_series; i++) {
        size_t len = strlen(m->series[i]) + strlen(interval_note(m, i));
        longest = len > longest ? len : longest;
    }
    /* as many columns as the longest entry allows (DejaVu Sans averages 0.6 em a letter), so
     * that height and drawing agree without a cairo context */
    cw = (double)longest * 0.6 * TICK_PT + 16;
    cols = (size_t)fmax(1.0, fmin(3.0, floor((w - LEFT) / cw)));
    cw = (w - LEFT) / (double)cols;
    char s[CS_PLOT_LABEL + 32];
    for (size_t i = 0; draw && i < n; i++) {
        double x = LEFT + (double)(i % cols) * cw, yy = y + 5 + 9.0 * (double)(i / cols);
        bool base = i == m->n_series;
        cairo_set_line_width(cr, base ? 0.9 : 1.2);
        if (base) {
            static const double dash[] = {2.5, 1.5};
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_dash(cr, dash, 2, 0);
        } else {
            colour(cr, i);
        }
        if (m->kind == CS_PLOT_TASKS && !base) {
            cairo_rectangle(cr, x, yy - 2.5, 8, 5);
            cairo_fill(cr);
        } else {
            cairo_move_to(cr, x, yy);
            cairo_line_to(cr, x + 9, yy);
            cairo_stroke(cr);
        }
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0, 0, 0);
        snprintf(s, sizeof(s), "%s%s", base ? "unquantized (baseline)" : m->series[i],
                 base ? "" : interval_note(m, i));
        text(cr, x + 11, yy, s, TICK_PT, 0.0, 0.5, false);
    }
    return 4 + 9.0 * (double)((n + cols - 1) / cols);
}

/* Heatmap layout: panel columns and rows, panel width and cell height. */
typedef struct heat_layout {
    size_t cols, rows;
    double pw, ch, ph, bar_x;
} heat_layout;

static heat_layout heat_layout_of(const cs_plot_model *m, double w)
{
    heat_layout l;
    size_t max_cols = w > 300 ? 3 : 2;
    l.cols = m->n_panels < max_cols ? m->n_panels : max_cols;
    l.rows = (m->n_panels + l.cols - 1) / l.cols;
    l.bar_x = w - 34;
    l.pw = (l.bar_x - 6 - LEFT - GAP * (double)(l.cols - 1)) / (double)l.cols;
    l.ch = fmin(fmax(l.pw / (double)m->n_x * 0.7, 9.0), 18.0);
    l.ch = fmax(l.ch, 84.0 / (double)m->n_y); /* room for the rotated axis labels */
    l.ph = l.ch * (double)m->n_y;
    return l;
}

double cs_plot_height(const cs_plot_model *m, double w)
{
    if (m->kind == CS_PLOT_HEATMAP) {
        heat_layout l = heat_layout_of(m, w);
        return 4 + (double)l.rows * (10 + l.ph + 10 + 4) + 10;
    }
    return w * 0.62 + 24 + legend(NULL, m, w, 0, false);
}

/* The colour bar at x from y0 to y1 over [lo, hi] (in the cells' printed units). */
static void colour_bar(cairo_t *cr, double x, double y0, double y1, double lo, double hi,
                       const char *label)
{
    double a = lo, b = hi, step = ticks(&a, &b, 4);
    char s[32];
    for (int i = 0; i < 64; i++) {
        double rgb[3];
        viridis((i + 0.5) / 64.0, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, x, y1 - (y1 - y0) * (i + 1) / 64.0, 6, (y1 - y0) / 64.0 + 0.3);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.4);
    for (double v = a; v <= b + step * 1e-6; v += step) {
        double y = y1 - (v - lo) / (hi - lo) * (y1 - y0);
        if (v < lo - step * 1e-6 || v > hi + step * 1e-6) {
            continue;
        }
        cairo_move_to(cr, x + 6, y);
        cairo_line_to(cr, x + 8, y);
        cairo_stroke(cr);
        snprintf(s, sizeof(s), "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
        text(cr, x + 9, y, s, TICK_PT - 0.5, 0.0, 0.5, false);
    }
    text(cr, x + 26, (y0 + y1) / 2, label, TICK_PT, 0.5, 1.0, true);
}

static void heatmap(cairo_t *cr, const cs_plot_model *m, double w, double h)
{
    heat_layout l = heat_layout_of(m, w);
    double k = m->std_ret ? 1.0 : 100.0, lo = INFINITY, hi = -INFINITY;
    double cw = l.pw / (double)m->n_x, rgb[3];
    char s[32];
    for (size_t p = 0; p < m->n_panels; p++) {
        for (size_t i = 0; i < m->n_y * CS_PLOT_MAX; i++) {
            double v = m->cell[p][i / CS_PLOT_MAX][i % CS_PLOT_MAX] * k;
            lo = isnan(v) ? lo : fmin(lo, v);
            hi = isnan(v) ? hi : fmax(hi, v);
        }
    }
    if (!(hi > lo)) {
        lo = isfinite(lo) ? lo - 0.5 : 0.0;
        hi = lo + 1.0;
    }
    for (size_t p = 0; p < m->n_panels; p++) {
        double x0 = LEFT + (double)(p % l.cols) * (l.pw + GAP);
        double y0 = 4 + (double)(p / l.cols) * (10 + l.ph + 14) + 10;
        text(cr, x0 + l.pw / 2, y0 - 2, m->panel[p], TICK_PT, 0.5, 1.0, false);
        for (size_t iy = 0; iy < m->n_y; iy++) {
            double y = y0 + l.ph - (double)(iy + 1) * l.ch;
            if (p % l.cols == 0) {
                snprintf(s, sizeof(s), "%g", m->y[iy]);
                cairo_set_source_rgb(cr, 0, 0, 0); /* the last cell's value may have left white */
                text(cr, x0 - 2, y + l.ch / 2, s, TICK_PT, 1.0, 0.5, false);
            }
            for (size_t ix = 0; ix < m->n_x; ix++) {
                double v = m->cell[p][iy][ix] * k, t = (v - lo) / (hi - lo);
                if (isnan(v)) {
                    cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
                } else {
                    viridis(t, rgb);
                    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
                }
                cairo_rectangle(cr, x0 + (double)ix * cw, y, cw, l.ch);
                cairo_fill(cr);
                snprintf(s, sizeof(s), isnan(v) ? "-" : m->std_ret ? "%.3f" : "%.1f", v);
                cairo_set_source_rgb(cr, 0, 0, 0);
                if (!isnan(v) && t < 0.55) {
                    cairo_set_source_rgb(cr, 1, 1, 1);
                }
                text(cr, x0 + ((double)ix + 0.5) * cw, y + l.ch / 2, s,
                     fmin(TICK_PT - 0.5, cw / 4.2), 0.5, 0.5, false);
            }
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        for (size_t ix = 0; ix < m->n_x; ix++) {
            snprintf(s, sizeof(s), "%g", m->x[ix]);
            text(cr, x0 + ((double)ix + 0.5) * cw, y0 + l.ph + 2, s, TICK_PT, 0.5, 0.0, false);
        }
    }
    text(cr, 4, 4 + ((double)l.rows * (l.ph + 24)) / 2, "n_samples (sequences)", LABEL_PT, 0.5, 0.0,
         true);
    text(cr, LEFT + (l.bar_x - 6 - LEFT) / 2, h - 1, "seq_len (tokens)", LABEL_PT, 0.5, 1.0, false);
    colour_bar(cr, l.bar_x, 14, 14 + (double)(l.rows - 1) * (l.ph + 24) + l.ph, lo, hi,
               m->std_ret ? "std_ret (lower is better)" : "average accuracy (%)");
}

/* The plot area of the line and bar figures. */
typedef struct area {
    double x0, y0, pw, ph, lo, hi, step;
} area;

static area area_of(const cs_plot_model *m, double w, double lo, double hi, bool zero)
{
    area a = {.x0 = LEFT, .y0 = 6, .pw = w - LEFT - 6, .ph = w * 0.62 - 6};
    a.lo = zero ? 0.0 : lo;
    a.hi = hi;
    a.step = ticks(&a.lo, &a.hi, 5);
    (void)m;
    return a;
}

static double ya(const area *a, double v)
{
    return a->y0 + a->ph - (v - a->lo) / (a->hi - a->lo) * a->ph;
}

static void lines(cairo_t *cr, const cs_plot_model *m, double w)
{
    double lo = INFINITY, hi = -INFINITY, dx = (w - LEFT - 6) / (double)m->n_x;
    char s[32];
    area a;
    for (size_t i = 0; i < m->n_series; i++) {
        for (size_t j = 0; j < m->n_x; j++) {
            double v = m->mean[i][j] * 100;
            double el = isnan(m->elo[i][j]) ? v : m->elo[i][j] * 100;
            double eh = isnan(m->ehi[i][j]) ? v : m->ehi[i][j] * 100;
            lo = isnan(v) ? lo : fmin(lo, fmin(v, el));
            hi = isnan(v) ? hi : fmax(hi, fmax(v, eh));
        }
    }
    if (!(hi >= lo)) {
        lo = 0;
        hi = 1;
    }
    a = area_of(m, w, lo, hi, false);
    y_axis(cr, a.x0, a.y0, a.pw, a.ph, a.lo, a.hi, a.step, "average accuracy (%)");
    for (size_t j = 0; j < m->n_x; j++) {
        snprintf(s, sizeof(s), "%g", m->x[j]);
        text(cr, a.x0 + ((double)j + 0.5) * dx, a.y0 + a.ph + 2, s, TICK_PT, 0.5, 0.0, false);
    }
    text(cr, a.x0 + a.pw / 2, a.y0 + a.ph + 11, "n_samples (calibration sequences)", LABEL_PT, 0.5,
         0.0, false);
    for (size_t i = 0; i < m->n_series; i++) {
        double off = ((double)i - (double)(m->n_series - 1) / 2) * fmin(3.0, dx * 0.06);
        bool pen = false;
        colour(cr, i);
        cairo_set_line_width(cr, 1.0);
        for (size_t j = 0; j < m->n_x; j++) {
            double x = a.x0 + ((double)j + 0.5) * dx + off, v = m->mean[i][j] * 100;
            if (isnan(v)) {
                pen = false;
                continue;
            }
            pen ? cairo_line_to(cr, x, ya(&a, v)) : cairo_move_to(cr, x, ya(&a, v));
            pen = true;
        }
        cairo_stroke(cr);
        for (size_t j = 0; j < m->n_x; j++) {
            double x = a.x0 + ((double)j + 0.5) * dx + off, v = m->mean[i][j] * 100;
            double el = m->elo[i][j] * 100, eh = m->ehi[i][j] * 100;
            if (isnan(v)) {
                continue;
            }
            cairo_arc(cr, x, ya(&a, v), 1.6, 0, 2 * M_PI);
            cairo_fill(cr);
            if (!isnan(el) && !isnan(eh)) {
                cairo_set_line_width(cr, 0.7);
                cairo_move_to(cr, x, ya(&a, el));
                cairo_line_to(cr, x, ya(&a, eh));
                cairo_move_to(cr, x - 1.5, ya(&a, el));
                cairo_line_to(cr, x + 1.5, ya(&a, el));
                cairo_move_to(cr, x - 1.5, ya(&a, eh));
                cairo_line_to(cr, x + 1.5, ya(&a, eh));
                cairo_stroke(cr);
            }
        }
    }
    legend(cr, m, w, a.y0 + a.ph + 20, true);
}

static void bars(cairo_t *cr, const cs_plot_model *m, double w)
{
    static const double dash[] = {2.5, 1.5};
    double hi = 0, dx = (w - LEFT - 6) / (double)m->n_tasks;
    double bw = dx * 0.8 / (double)m->n_series;
    area a;
    for (size_t t = 0; t < m->n_tasks; t++) {
        hi = isnan(m->base[t]) ? hi : fmax(hi, m->base[t] * 100);
        for (size_t i = 0; i < m->n_series; i++) {
            hi = isnan(m->mean[i][t]) ? hi : fmax(hi, m->mean[i][t] * 100);
        }
    }
    a = area_of(m, w, 0, hi > 0 ? hi * 1.04 : 1, true); /* the baseline clear of the frame */
    if (a.hi > 100 && hi <= 100) { /* accuracy ends at 100 %: no empty band above it */
        a.hi = 100;
        a.step = ticks(&a.lo, &a.hi, 5);
        a.hi = 104;
    }
    y_axis(cr, a.x0, a.y0, a.pw, a.ph, a.lo, a.hi, a.step, "accuracy (%)");
    for (size_t t = 0; t < m->n_tasks; t++) {
        double gx = a.x0 + (double)t * dx + dx * 0.1;
        for (size_t i = 0; i < m->n_series; i++) {
            double v = m->mean[i][t] * 100;
            if (!isnan(v)) {
                colour(cr, i);
                cairo_rectangle(cr, gx + (double)i * bw, ya(&a, v), bw * 0.92,
                                ya(&a, 0) - ya(&a, v));
                cairo_fill(cr);
            }
        }
        if (!isnan(m->base[t])) {
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_line_width(cr, 0.9);
            cairo_set_dash(cr, dash, 2, 0);
            cairo_move_to(cr, gx - dx * 0.05, ya(&a, m->base[t] * 100));
            cairo_line_to(cr, gx + dx * 0.85, ya(&a, m->base[t] * 100));
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        /* shrunk to fit its group (0.6 em a letter), not below 4.5 pt */
        text(cr, gx + dx * 0.4, a.y0 + a.ph + 2, m->task[t],
             fmax(4.5, fmin(TICK_PT, dx * 0.95 / (0.6 * (double)strlen(m->task[t])))), 0.5, 0.0,
             false);
    }
    text(cr, a.x0 + a.pw / 2, a.y0 + a.ph + 11, "task (headline metric)", LABEL_PT, 0.5, 0.0,
         false);
    legend(cr, m, w, a.y0 + a.ph + 20, true);
}

void cs_plot_draw(cairo_t *cr, const cs_plot_model *m, double w, double h)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (m->kind == CS_PLOT_HEATMAP) {
        heatmap(cr, m, w, h);
    } else if (m->kind == CS_PLOT_NSAMPLES) {
        lines(cr, m, w);
    } else {
        bars(cr, m, w);
    }
}
