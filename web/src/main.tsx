// main.tsx - the entry point of the UI bundle (web/build.mjs).
import { render } from 'preact';
import { App } from './app';
import './app.css';
// the Monitor's charts (uPlot) are in a chunk loaded later; their 1.6 KB of
// CSS is here, since only the entry's CSS is linked from index.html
import 'uplot/dist/uPlot.min.css';

render(<App />, document.getElementById('app')!);
